"""Run one training in its own process and report it as JSON lines on stdout (the GUI's training backend).

Usage::

    python -m engine.train.train_process --spec spec.json RUN_DIR     # a new run (spec: RunSpec.to_json())
    # a spec with "init_from": CHECKPOINT (a file, run folder or bundled name) starts from that model's networks
    python -m engine.train.train_process --resume RUN_DIR [--steps N] [--device cpu]  # exact resume, optionally longer
    python -m engine.train.train_process --resume RUN_DIR --retune '{"r1_gamma": 0.1}'  # resume with new loss weights

Under torchrun (``torchrun --nproc-per-node N -m engine.train.train_process ...``, or :func:`command` with ``nproc``)
every process trains its share of each batch (see :mod:`engine.train.distributed`) and rank 0 alone reports
progress; an error on any rank is reported with its rank.

Each :class:`~engine.train.training.Progress` event becomes one line ``{"kind": ..., "step": ..., ...}`` plus
``device`` and ``memory_mb`` (peak). SIGTERM, SIGINT or a file ``RUN_DIR/stop`` ask for a stop: the run saves a
checkpoint and the process exits 0. A failure prints ``{"kind": "error", "error": ..., "message": ...,
"oom": bool}`` and exits non-zero. Anything else written to stdout (by libraries) is sent to stderr so the
JSON stream stays clean.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

STOP_FILE = "stop"
OOM_HINT = "try a smaller batch size or image size"
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--monitor-interval", "0.5")


def command(args: list[str], nproc: int = 1) -> list[str]:
    """The command line of a training run: ``python -m engine.train.train_process ARGS``, or with ``nproc`` > 1 the
    same started by torchrun as ``nproc`` processes on this machine (one per GPU; gloo processes on a CPU)."""
    if nproc <= 1:
        return [sys.executable, "-m", "engine.train.train_process", *args]
    return [sys.executable, *TORCHRUN, f"--nproc-per-node={nproc}", "-m", "engine.train.train_process", *args]


def _peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    except (ImportError, OSError):  # pragma: no cover - Windows
        return math.nan


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _emit(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(_clean(record)) + "\n")
    out.flush()


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()


def _retune_changes(text: str | None) -> dict[str, Any] | None:
    """The ``--retune`` JSON object, or None; anything else is a ConfigError."""
    from engine.core.errors import ConfigError

    if not text:
        return None
    try:
        changes = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--retune is not valid JSON ({exc})") from None
    if not isinstance(changes, dict):
        raise ConfigError("--retune must be a JSON object of field names and values")
    return changes


def _read_init(source: str, family: str) -> Any:
    """The networks a new run starts from (``init_from`` of its spec), checked to be of the run's family."""
    from engine.train.finetune import check_family, read_source

    init = read_source(source)
    check_family(family, init)
    return init


def run(args: argparse.Namespace, out: TextIO) -> int:
    stop_signal: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stop_signal.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):  # before the slow imports, so an early stop is not lost
        signal.signal(sig, on_signal)
    run_dir = Path(args.run_dir)
    stop_file = run_dir / STOP_FILE
    stop_file.unlink(missing_ok=True)  # a stale request from an earlier session (the GUI also signals)

    from engine.core.device import describe_device, resolve_device
    from engine.core.errors import ConfigError, GanvasError
    from engine.train import distributed
    from engine.train.finetune import SPEC_KEY
    from engine.train.training import RunSpec, train

    rank = 0

    try:
        retune = _retune_changes(args.retune)
        init = None
        if args.resume:
            spec, resume = None, True
        else:
            meta = json.loads(Path(args.spec).read_text(encoding="utf-8"))
            spec, resume = RunSpec.from_json(meta), False
            if meta.get(SPEC_KEY):
                init = _read_init(str(meta[SPEC_KEY]), spec.family)
        device_spec = spec.train.device if spec is not None else "auto"
        if resume:
            from engine.core.checkpoint import read_metadata

            device_spec = args.device or read_metadata(run_dir / "latest.safetensors")["train_config"]["device"]
        device = resolve_device(device_spec)
        ranks = distributed.init_from_env(device)
        rank, device = ranks.rank, distributed.local_device(device)
        device_name = describe_device(device) + (f" x {ranks.world_size} processes" if ranks.enabled else "")
        if init is not None and ranks.enabled:
            raise ConfigError("starting from a model with several processes is not supported yet: fine-tune in one")
        events = train(spec, run_dir, resume=resume, steps=args.steps, retune=retune, init=init,
                       device=args.device if resume else None,
                       should_stop=lambda: bool(stop_signal) or stop_file.exists())
        for event in events:
            if ranks.is_main:
                record = dataclasses.asdict(event)
                record.update(device=device_name, memory_mb=round(_peak_memory_mb(str(device)), 1))
                _emit(out, record)
        distributed.shutdown()  # after a failure the group is left alone: a dead peer can hang its teardown
    except Exception as exc:
        exc = distributed.describe_failure(exc) or exc
        oom = _is_oom(exc)
        known = isinstance(exc, GanvasError)
        if not known:
            traceback.print_exc(file=sys.stderr)
        message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        if distributed.world_size_from_env() > 1:
            message = f"rank {rank}: {message}"
        _emit(out, {"kind": "error", "error": type(exc).__name__, "message": message, "oom": oom,
                    "suggestion": OOM_HINT if oom else ""})
        return getattr(exc, "exit_code", 1) if known else (6 if oom else 1)
    finally:
        if rank == 0:
            stop_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train.train_process", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="JSON file with the RunSpec of a new run")
    source.add_argument("--resume", action="store_true", help="resume RUN_DIR from its latest checkpoint")
    parser.add_argument("--steps", type=int, default=None, help="new total step count when resuming")
    parser.add_argument("--retune", default=None,
                        help="JSON object of retunable model-config fields to change when resuming")
    parser.add_argument("--device", default=None, help="when resuming: continue on this device (cpu, cuda...)")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr, the JSON stream stays clean
    try:
        return run(args, out)
    except MemoryError:
        _emit(out, {"kind": "error", "error": "MemoryError", "message": "out of memory", "oom": True,
                    "suggestion": OOM_HINT})
        return 6


def _exit(code: int) -> None:
    """Exit with ``code``. A rank of a torchrun launch skips the interpreter's finalisation: gloo's worker
    threads can still hold tensors then, and freeing them while the interpreter shuts down can abort the
    process (SIGABRT, "terminate called without an active exception") after a run that finished well."""
    if os.environ.get("WORLD_SIZE", "1") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
