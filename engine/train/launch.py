"""``ganvas train --nproc N``: start a run as N training processes under torchrun and follow it.

:func:`train_processes` has the shape of :func:`engine.train.training.train` (a generator of
:class:`~engine.train.training.Progress` events with a stop callback), so the CLI renders both the same way. The
processes report as JSON lines (:mod:`engine.train.train_process`); torchrun's own messages and any worker traceback
go to stderr as usual.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.core import errors
from engine.core.checkpoint import read_metadata
from engine.core.device import cuda_device_count, resolve_device
from engine.core.errors import ConfigError, GanvasError, TrainingError
from engine.train.train_process import STOP_FILE, command
from engine.train.training import Progress, RunSpec

SPEC_FILE = "spec.json"
PROGRESS_FIELDS = {f.name for f in dataclasses.fields(Progress)}


def train_processes(
    spec: RunSpec | None,
    run_dir: str | Path,
    *,
    nproc: int,
    resume: bool = False,
    steps: int | None = None,
    retune: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Progress]:
    """Train (or resume) ``run_dir`` on ``nproc`` processes; yields rank 0's events.

    A stop request writes ``RUN_DIR/stop``: every process sees it, they agree on the step, save and exit.

    Raises:
        GanvasError: the error a process reported (its class, e.g. ConfigError for a bad option), or a
            :class:`TrainingError` when a process died without a word; the message names the last checkpoint.
    """
    if nproc < 1:
        raise ConfigError(f"invalid --nproc {nproc}: expected 1 or more", value=nproc)
    run_dir = Path(run_dir)
    if resume:
        _check_devices(read_metadata(run_dir / "latest.safetensors")["train_config"]["device"], nproc)
    elif spec is not None:
        _check_devices(spec.train.device, nproc)
    args = ["--resume"] if resume else ["--spec", str(run_dir / SPEC_FILE)]
    if spec is not None and not resume:
        if (run_dir / "latest.safetensors").exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume {run_dir} or choose another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / SPEC_FILE).write_text(json.dumps(spec.to_json(), indent=2), encoding="utf-8")
    args += [] if steps is None else ["--steps", str(steps)]
    args += ["--retune", json.dumps(retune)] if retune else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A session of its own: Ctrl-C reaches this process only, which asks the workers to stop through the file.
    process = subprocess.Popen(command([*args, str(run_dir)], nproc), stdout=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    reported: list[dict[str, Any]] = []
    stop_sent = False
    try:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a library's print
            if record.get("kind") == "error":
                reported.append(record)
                continue
            yield Progress(**{key: value for key, value in record.items() if key in PROGRESS_FIELDS})
            if not stop_sent and should_stop is not None and should_stop():
                (run_dir / STOP_FILE).write_text("requested by ganvas train\n", encoding="utf-8")
                stop_sent = True
        code = process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
    if code != 0:
        raise _failure(reported, code, run_dir, nproc)


def _check_devices(device_spec: str, nproc: int) -> None:
    """Refuse before starting anything: more CUDA processes than GPUs, or several processes on MPS."""
    device = resolve_device(device_spec)
    if device.type == "cuda" and nproc > cuda_device_count():
        raise ConfigError(f"--nproc {nproc} asks for more processes than this machine's "
                          f"{cuda_device_count()} CUDA device(s)", value=nproc)
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"training on several processes needs CUDA or the CPU, not {device.type}",
                          value=device.type)


def _failure(reported: list[dict[str, Any]], code: int, run_dir: Path, nproc: int) -> GanvasError:
    """The error to show: the first process's own report over another's lost contact, plus where to resume."""
    first = next((r for r in reported if "lost contact" not in r.get("message", "")), None)
    first = first or (reported[0] if reported else None)
    if first is not None:
        message = first["message"]
        cls = getattr(errors, first.get("error", ""), None)
        cls = cls if isinstance(cls, type) and issubclass(cls, GanvasError) else TrainingError
    else:
        message, cls = f"a training process died (torchrun exited with code {code}; see the messages above)", \
            TrainingError
    try:
        step = read_metadata(run_dir / "latest.safetensors")["step"]
        message += f"; the last checkpoint (step {step}) is intact: ganvas train --resume {run_dir} --nproc {nproc}"
    except GanvasError:
        pass
    return cls(message)
