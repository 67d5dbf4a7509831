"""The shared training loop: a generator of :class:`Progress` events with a stop callback.

It reads top to bottom: build (or restore) the family's trainer, then for each step draw a batch, run the
family's ``train_step``, set the LR schedule, and now and then flush losses to ``log.jsonl``, save a sample
grid and a checkpoint. The CLI renders the events with tqdm; the GUI's training process forwards them.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.checkpoint import (
    RunCheckpoints,
    flatten_state,
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    read_metadata,
    resolve_checkpoint,
)
from engine.core.config import DataConfig, TrainConfig, from_dict, replace, to_dict, upgrade_config_keys
from engine.core.device import describe_device, resolve_device, seed_everything, set_deterministic
from engine.core.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    ImageError,
    StorageError,
    TrainingError,
)
from engine.core.imageio import atomic_write_bytes, write_failure, write_image
from engine.core.registry import get_family
from engine.core.run_log import CONFIG_FILE, LOG_FILE, latest_sample_path, sample_path, samples_dir
from engine.data.dataset_check import preflight
from engine.train import distributed
from engine.train.finetune import describe_init, load_initial_weights
from engine.train.trainer import Trainer


@dataclass(frozen=True)
class Progress:
    """One event of a training run.

    ``kind`` is ``start``, ``step``, ``sample``, ``checkpoint``, ``done`` or ``stopped``.
    """

    kind: str
    step: int
    total: int
    epoch: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    it_per_s: float = 0.0
    eta_s: float = math.nan
    lr_factor: float = 1.0
    path: str | None = None
    message: str = ""
    images: int = 0  # real images shown so far (steps x batch size; StyleGAN reports it in kimg)


def lr_factor(step: int, train: TrainConfig) -> float:
    """Constant until ``decay_from``, then linear decay reaching zero at ``steps``."""
    start = train.decay_from
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, train.steps - start))


@dataclass
class RunSpec:
    """What a run is made of: family name and the three configs, and the model-config changes made on resume
    (``{"step": N, "field": [old, new], ...}`` each)."""

    family: str
    model: Any
    train: TrainConfig
    data: DataConfig
    retunes: list[dict[str, Any]] = field(default_factory=list)
    init: dict[str, Any] | None = None  # the model a fine-tuning run started from (engine.train.finetune)

    def to_json(self) -> dict[str, Any]:
        out = {"family": self.family, "model_config": to_dict(self.model), "train_config": to_dict(self.train),
               "data_config": to_dict(self.data)}
        if self.init:
            out["init"] = self.init
        return {**out, "retunes": self.retunes} if self.retunes else out

    @classmethod
    def from_json(cls, meta: dict[str, Any]) -> RunSpec:
        meta = upgrade_config_keys(meta)  # a spec or header written before today's field names
        family = get_family(meta["family"])
        return cls(
            family=meta["family"],
            model=from_dict(family.config_cls, meta["model_config"]),
            train=from_dict(TrainConfig, meta["train_config"]),
            data=from_dict(DataConfig, meta["data_config"]),
            retunes=list(meta.get("retunes", [])),
            init=meta.get("init"),
        )

    def retune(self, step: int, changes: dict[str, Any]) -> str:
        """Change model-config fields the family lets a resumed run change; returns a note for the user.
        Repeating a field's own value changes nothing and is accepted for any field (as ``--lr`` was when it
        was a train flag).

        Raises:
            ConfigError: a field that cannot change on resume, or a value the config or family refuses.
        """
        family = get_family(self.family)
        missing = object()
        refused = sorted(name for name, value in changes.items() if name not in family.retunable
                         and _as_stored(getattr(self.model, name, missing)) != _as_stored(value))
        if refused:
            allowed = ", ".join(family.retunable) or "none"
            raise ConfigError(f"{', '.join(refused)} cannot change when resuming a {self.family} run "
                              f"(retunable: {allowed})")
        new = replace(self.model, **changes)
        family.check_retune(self.model, new)
        diff = {name: [getattr(self.model, name), value] for name, value in changes.items()
                if getattr(self.model, name) != value}
        self.model = new
        if not diff:
            return ""
        self.retunes.append({"step": step, **diff})
        return "retuned " + describe_retune(self.retunes[-1])


def spec_from_meta(meta: dict[str, Any], path: str | Path) -> RunSpec:
    """The :class:`RunSpec` stored in a checkpoint header; a header that cannot give one (a missing or invalid
    config) is a :class:`CheckpointError` naming ``path``."""
    try:
        return RunSpec.from_json(meta)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        detail = f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(f"cannot resume from this checkpoint: its configs are invalid ({detail})",
                              path=path) from exc


def spec_from_checkpoint(path: str | Path) -> RunSpec:
    """:func:`spec_from_meta` of a checkpoint file or run folder (reads the header only)."""
    return spec_from_meta(read_metadata(path), resolve_checkpoint(path))


def _as_stored(value: Any) -> Any:
    """``value`` as a config stores it (tuples and lists alike), for comparing a flag with a stored field."""
    return list(value) if isinstance(value, tuple | list) else value


def describe_retune(entry: dict[str, Any]) -> str:
    """``r1_gamma 1.0 -> 0.1, ...`` for one :attr:`RunSpec.retunes` entry (its step left out)."""
    return ", ".join(f"{name} {change[0]} -> {change[1]}" for name, change in entry.items() if name != "step")


class _LossLog:
    """Buffers per-step losses on the device and writes them to JSONL in one host sync per flush."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[tuple[int, float, dict[str, torch.Tensor]]] = []
        self.last: dict[str, float] = {}

    def add(self, step: int, lr: float, losses: dict[str, torch.Tensor]) -> None:
        self.pending.append((step, lr, losses))

    def flush(self) -> None:
        """Write buffered steps; raise :class:`TrainingError` at the first non-finite loss."""
        if not self.pending:
            return
        names = list(self.pending[0][2])
        values = torch.stack([torch.stack([losses[n].detach().float() for n in names])
                              for _, _, losses in self.pending]).cpu().tolist()
        lines = []
        for (step, lr, _), row in zip(self.pending, values, strict=True):
            record = dict(zip(names, row, strict=True))
            bad = [n for n, v in record.items() if not math.isfinite(v)]
            if bad:
                self.pending.clear()
                self._append(lines)
                raise TrainingError(f"loss {bad[0]} became {record[bad[0]]} at step {step}", value=step)
            lines.append(json.dumps({"step": step, "lr_factor": round(lr, 6), **record}))
            self.last = record
        self.pending.clear()
        self._append(lines)

    def rewind(self, step: int) -> None:
        """Keep one record per step up to ``step`` (the checkpoint a run resumes from).

        A run killed after its last checkpoint logged steps it will train again; where the log goes back in
        steps, the later records replace the earlier ones, so curves never double back.
        """
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return
        kept: list[tuple[int, str]] = []
        for line in lines:
            try:
                record_step = int(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill
            while kept and kept[-1][0] >= record_step:
                kept.pop()
            kept.append((record_step, line))
        kept_lines = [line for record_step, line in kept if record_step <= step]
        if kept_lines != lines:
            atomic_write_bytes(self.path, "".join(line + "\n" for line in kept_lines).encode("utf-8"))

    def _append(self, lines: list[str]) -> None:
        """Append whole lines; a failed write (disk full) is cut back, so no torn line stays behind."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            with open(self.path, "ab") as handle:
                start = handle.tell()
                try:
                    handle.write(data)
                    handle.flush()
                except OSError:
                    handle.truncate(start)
                    raise
        except OSError as exc:
            raise StorageError(f"cannot append to the loss log ({write_failure(exc, len(data))}); checkpoints up "
                               "to the last one are kept", path=self.path) from exc


def _start_message(family: str, device: str, data: dict[str, Any]) -> str:
    """``family on device, size`` plus any notes the trainer has for the user (e.g. a loss left out)."""
    notes = data.get("notes")
    return f"{family} on {device}, {data.get('size', '')}" + (f"; {notes}" if notes else "")


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    return tensors


def _python_rng_json() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    return {"python": [version, list(state), gauss],
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def _restore_rng(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"].cpu())
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            key = f"rng.cuda.{index}"
            if key in tensors:
                torch.cuda.set_rng_state(tensors[key].cpu(), index)
    version, state, gauss = info["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, *rest = info["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


def _checkpoint_payload(spec: RunSpec, trainer: Trainer, step: int) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    optim_info: dict[str, Any] = {}
    for name, net in trainer.nets.items():
        tensors.update(flatten_state(f"net.{name}", net.state_dict()))
    for name, optimizer in trainer.optimizers.items():
        flat, info = optimizer_to_flat(f"optim.{name}", optimizer)
        tensors.update(flat)
        optim_info[name] = info
    tensors.update(_rng_tensors())
    tensors["rng.augment"] = trainer.augment_generator.get_state()
    extra_tensors, extra_info = trainer.extra_state()
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in extra_tensors.items()})
    meta = {
        **spec.to_json(),
        "step": step,
        "epoch": trainer.epochs_done,
        "lr_schedule": {"kind": "constant_then_linear", "decay_from": spec.train.decay_from,
                        "steps": spec.train.steps, "base_lrs": trainer.base_lrs,
                        "factor": lr_factor(step, spec.train)},
        "optimizers": optim_info,
        "grad_scaler": trainer.precision.state_dict(),
        "sampler": trainer.sampler_state(),
        "rng": _python_rng_json(),
        "extra": extra_info,
        "dataset": trainer.describe_data(),
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return tensors, meta


def _first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or Inf (weights, buffers, moments), or None."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def _restore(trainer: Trainer, checkpoint_tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    from engine.core.checkpoint import Checkpoint

    checkpoint = Checkpoint(path=Path("."), meta=meta, tensors=checkpoint_tensors)
    for name, net in trainer.nets.items():
        net.load_state_dict(checkpoint.group(f"net.{name}"))
    for name, optimizer in trainer.optimizers.items():
        optimizer_from_flat(optimizer, checkpoint.group(f"optim.{name}"), meta["optimizers"][name])
    trainer.load_sampler_state(meta["sampler"])
    trainer.augment_generator.set_state(checkpoint_tensors["rng.augment"].cpu())
    trainer.load_extra_state(checkpoint.group("extra"), meta.get("extra", {}))
    trainer.precision.load_state_dict(meta.get("grad_scaler", {}))
    _restore_rng(checkpoint_tensors, meta["rng"])


def train(
    spec: RunSpec | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    steps: int | None = None,
    retune: dict[str, Any] | None = None,
    device: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    init: Any = None,
    check_data: bool = False,
) -> Iterator[Progress]:
    """Train (or resume) a run, yielding :class:`Progress` events; stops cleanly when ``should_stop()``.

    Args:
        spec: family and configs of a new run (ignored when resuming: the checkpoint's are used).
        run_dir: folder for ``latest.safetensors``, ``checkpoints/``, ``log.jsonl``, ``samples/``.
        resume: continue from ``run_dir/latest.safetensors`` with exact state (step, LR, moments, RNG).
        steps: when resuming, a new total step count (to train longer).
        retune: when resuming, new values for the family's :attr:`~engine.families.base.Family.retunable`
            model-config fields (e.g. a lower StyleGAN2 ``r1_gamma``); recorded in the run's ``retunes``.
        device: when resuming, where to continue (``cpu``, ``cuda``...): not a setting of the model, so a run
            started on one device continues on another.
        should_stop: polled between steps; when it returns True a checkpoint is saved and the run ends.
        init: a new run starts from this checkpoint's networks (:func:`engine.train.finetune.read_source`).
        check_data: run the dataset check (:func:`engine.data.dataset_check.preflight`) before a new run's first
            step: files that would fail or mislead training stop it at once, smaller problems are noted in the
            ``start`` event's message.

    Raises:
        TrainingError: a non-finite loss (the last good checkpoint is kept).
    """
    run_dir = Path(run_dir)
    checkpoint, retune_note = None, ""
    if resume:
        checkpoint = load_checkpoint(run_dir)
        spec = spec_from_meta(checkpoint.meta, checkpoint.path)
        if steps is not None:
            if steps < checkpoint.step:
                raise ConfigError(f"--steps {steps} is below the step already reached ({checkpoint.step})")
            spec.train = replace(spec.train, steps=steps)
        retune_note = spec.retune(checkpoint.step, retune or {})
        if device is not None:
            spec.train = replace(spec.train, device=device)
    elif retune:
        raise ConfigError("retuning is for resumed runs; a new run takes these settings directly")
    elif spec is None:
        raise ConfigError("a new run needs a family and configs")
    elif (run_dir / "latest.safetensors").exists():
        raise ConfigError(f"{run_dir} already holds a run; use --resume {run_dir} or choose another --out")
    assert spec is not None
    family = get_family(spec.family)
    device = distributed.local_device(resolve_device(spec.train.device))
    dist = distributed.context()  # several training processes under torchrun, else one
    set_deterministic(spec.train.deterministic)
    seed_everything(spec.train.seed)
    trainer = family.make_trainer(spec.model, spec.train, spec.data, device)
    # A plain folder is checked; other forms (CycleGAN's "DIR_A,DIR_B") are checked by the family's loader.
    checkable = check_data and not resume and Path(spec.data.path).is_dir()
    palette = str(getattr(spec.model, "palette", "") or "")  # label maps must be in the palette the model draws
    data_notes = preflight(spec.data.path, spec.family, spec.data.layout, palette) if checkable else []
    dist.prepare(trainer, spec.train.seed)
    start = 0
    if checkpoint is not None:
        try:
            _restore(trainer, checkpoint.tensors, checkpoint.meta)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"cannot resume from this checkpoint ({exc})", path=checkpoint.path) from exc
        start = checkpoint.step
        dist.restore_rank_state(trainer, checkpoint.tensors, checkpoint.meta, start)
        del checkpoint
    elif init is not None:
        spec.init = load_initial_weights(trainer, init)
    else:
        spec.init = None  # the record is of weights this run loaded; a spec copied from a fine-tuned run has none
    if dist.is_main:  # rank 0 alone writes the run folder; the other ranks flush (NaN check) to nowhere
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            samples_dir(run_dir).mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the run folder ({exc.strerror or exc})", path=run_dir) from exc
    checkpoints = RunCheckpoints(run_dir, keep_last=spec.train.keep_last)
    if dist.is_main:
        checkpoints.remove_orphans()
        atomic_write_bytes(run_dir / CONFIG_FILE, json.dumps(spec.to_json(), indent=2).encode())
    log = _LossLog(run_dir / LOG_FILE if dist.is_main else Path(os.devnull))
    if resume:
        log.rewind(start)
    elif dist.is_main:
        _start_fresh_log(log.path)
    last_saved = start if resume else None
    total = spec.train.steps
    flush_every = spec.train.log_every if device.type == "cpu" else max(spec.train.log_every, 20)

    def save(step: int) -> str:
        nonlocal last_saved
        log.flush()  # raises on NaN before anything is written: the last checkpoint stays good
        tensors, meta = _checkpoint_payload(spec, trainer, step)
        bad = _first_non_finite(tensors)
        if bad is not None:
            kept = f"latest stays at step {last_saved}" if last_saved is not None else "no checkpoint was saved"
            raise TrainingError(f"{bad} became non-finite (NaN or Inf) by step {step} (learning rate too high?); "
                                f"{kept}", value=step)
        meta["metrics"] = {"losses": log.last}
        dist.gather_rank_states(trainer, tensors, meta)
        path = str(checkpoints.save(step, tensors, meta)) if dist.is_main else ""
        last_saved = step
        return path

    def sample(step: int) -> str:
        grid = trainer.sample_grid()  # on every rank: SyncBatchNorm layers need all of them
        if not dist.is_main:
            return ""
        path = write_image(sample_path(run_dir, step), grid)
        write_image(latest_sample_path(run_dir), grid)
        return str(path)

    def event(kind: str, **fields: Any) -> Progress:
        """An event at the current step, with the fields every event carries filled in."""
        return Progress(kind, step, total, trainer.epochs_done, log.last, images=step * trainer.global_batch_size,
                        **fields)

    step = start
    processes = f" x {dist.world_size} processes" if dist.enabled else ""
    message = _start_message(spec.family, describe_device(device) + processes, trainer.describe_data())
    if spec.init and start == 0:
        message += "; " + describe_init(spec.init)
    if data_notes:
        message += f"; dataset check: {len(data_notes)} warning(s), first: {data_notes[0]}"
    yield event("start", message=message + (f"; {retune_note}" if retune_note else ""))
    times: deque[float] = deque(maxlen=50)
    last_time = time.perf_counter()
    while step < total:
        if should_stop is not None and dist.agree(should_stop()):
            yield event("stopped", path=save(step), message="stopped; checkpoint saved")
            return
        factor = lr_factor(step, spec.train)
        trainer.set_lr_factor(factor)
        try:
            batch = trainer.next_batch()
        except (ImageError, DatasetError) as exc:  # a file went bad mid-run: keep the steps trained so far
            if step > (last_saved or 0):
                save(step)
                exc.args = (f"{exc}; checkpoint saved at step {step}",)
            raise
        losses = dist.after_step(trainer, trainer.train_step(batch))
        step += 1
        log.add(step, factor, losses)
        if step % flush_every == 0:
            log.flush()
        now = time.perf_counter()
        times.append(now - last_time)
        last_time = now
        rate = len(times) / sum(times)
        yield event("step", it_per_s=rate, eta_s=(total - step) / rate, lr_factor=factor)
        if step % spec.train.sample_every == 0 or step == total:
            yield event("sample", it_per_s=rate, path=sample(step))
        if step % spec.train.checkpoint_every == 0 or step == total:
            yield event("checkpoint", it_per_s=rate, path=save(step))
        last_time = time.perf_counter()  # sample/checkpoint time does not count towards it/s
    yield event("done", path=str(checkpoints.latest), message="training finished")


def _start_fresh_log(path: Path) -> None:
    """A new run starts its own log: lines a run killed before its first checkpoint left are dropped."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot replace the old loss log ({exc.strerror or exc})", path=path) from exc


def run_training(
    spec: RunSpec | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    steps: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Progress:
    """Callback form of :func:`train`: returns the last event."""
    event = None
    for event in train(spec, run_dir, resume=resume, steps=steps, should_stop=should_stop):
        if on_progress is not None:
            on_progress(event)
    assert event is not None
    return event
