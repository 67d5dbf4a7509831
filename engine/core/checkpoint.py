"""Checkpoints: one safetensors file per checkpoint, with JSON metadata in its header.

Layout of a file:

* tensors: ``net.<name>.<param>`` for every network, ``ema.<name>.<param>`` for EMA copies,
  ``optim.<name>.<index>.<key>`` for optimizer moments, ``rng.<name>`` for RNG states, ``extra.<...>`` for
  family-specific state (image pools, ...).
* metadata: ``{"ganvas": JSON}`` holding format and version, family, model/train/data configs, step, epoch,
  LR schedule, optimizer hyper-parameters, Python/NumPy RNG states, dataset description and metrics.

Files are written atomically (temp file + fsync + rename); a run folder keeps the full state in
``latest.safetensors`` (what a run resumes from) plus generator-only snapshots of the last N checkpointed steps in
``checkpoints/`` (what the app loads to draw with an earlier step), stored in float16: a sixth of the size. Nothing is ever unpickled; ``.pth`` imports go through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.core.config import upgrade_config_keys
from engine.core.errors import CheckpointError, StorageError
from engine.core.imageio import default_file_mode, write_failure

FORMAT = "ganvas-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
LATEST = "latest" + SUFFIX
TEMP_SUFFIX = ".tmp"  # temp files are ``.<final name>.<random>.tmp`` beside their final name


@dataclass
class Checkpoint:
    """A loaded checkpoint: metadata plus a flat dict of tensors."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(repr=False)

    @property
    def family(self) -> str:
        return self.meta["family"]

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.`` with the prefix removed (e.g. ``net.G`` -> a state dict)."""
        start = prefix + "."
        return {k[len(start):]: v for k, v in self.tensors.items() if k.startswith(start)}

    def has_group(self, prefix: str) -> bool:
        start = prefix + "."
        return any(k.startswith(start) for k in self.tensors)


def flatten_state(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Prefix every key of a module ``state_dict`` (tensors are detached, made contiguous, moved to CPU)."""
    return {f"{prefix}.{k}": v.detach().to("cpu").contiguous() for k, v in state.items()}


def optimizer_to_flat(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state into tensors (moments) and JSON (hyper-parameters, scalar state)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> None:
    """Restore what :func:`optimizer_to_flat` produced into ``optimizer``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    for index, entry in info.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: a crash mid-write leaves any previous file at ``path`` intact.

    Raises:
        StorageError: the folder is not writable or the disk is full.
    """
    path = Path(path)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    metadata = {"ganvas": json.dumps(header, default=_json_default)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot create checkpoint ({exc.strerror})", path=path) from exc
    tmp = Path(tmp_name)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, default_file_mode())  # safetensors creates the file 0600; a checkpoint is a normal file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, SafetensorError) as exc:
        tmp.unlink(missing_ok=True)
        needed = sum(t.numel() * t.element_size() for t in tensors.values()) + len(metadata["ganvas"])
        raise StorageError(f"cannot write checkpoint ({write_failure(exc, needed)}); the previous one is kept",
                           path=path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_orphan_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files that writes killed mid-way left in ``folder`` (``.<name>.*.tmp``).

    Only one process writes a run folder at a time, so any such file at the start of a run is an orphan.
    """
    removed = []
    if folder.is_dir():
        for orphan in folder.glob(f".*{TEMP_SUFFIX}"):
            try:
                orphan.unlink()
                removed.append(orphan)
            except OSError:
                pass
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


def models_folder() -> Path:
    """``assets/models`` of the installed package, where bundled models live (it may not exist)."""
    return Path(str(importlib.resources.files("assets"))) / "models"


def bundled_path(name: str) -> Path | None:
    """The file of the bundled model called ``name`` (its file stem, e.g. ``facades``), or None."""
    if not name or any(sep in name for sep in ("/", "\\")) or name.startswith("."):
        return None
    path = models_folder() / f"{name}{SUFFIX}"
    return path if path.is_file() else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a run folder meaning its ``latest`` checkpoint, or a bundled model's name."""
    if not Path(path).exists():
        path = bundled_path(str(path)) or path
    path = Path(path)
    if path.is_dir():
        latest = path / LATEST
        if latest.is_file():
            return latest
        raise CheckpointError(f"run folder has no {LATEST} (has training saved a checkpoint yet?)", path=path)
    if not path.exists():
        raise CheckpointError("checkpoint not found (nor a bundled model: see `ganvas models`)", path=path)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Only the JSON header (fast: tensors are not read)."""
    path = resolve_checkpoint(path)
    return _open(path, device="cpu", with_tensors=False).meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", prefixes: tuple[str, ...] = ()) -> Checkpoint:
    """Load a checkpoint file (or a run folder's latest).

    Args:
        path: checkpoint file or run folder.
        device: where tensors are placed.
        prefixes: load only tensors whose names start with one of these (all when empty), e.g. ``("net.G",)``.

    Raises:
        CheckpointError: missing, truncated, not a safetensors file, not a Ganvas checkpoint, or newer format.
    """
    return _open(resolve_checkpoint(path), device=device, with_tensors=True, prefixes=prefixes)


def _open(path: Path, device: str | torch.device, with_tensors: bool, prefixes: tuple[str, ...] = ()) -> Checkpoint:
    if path.suffix.lower() in (".pth", ".pt", ".ckpt", ".pkl"):
        raise CheckpointError(
            "is a PyTorch pickle, not a Ganvas checkpoint; import its weights with `ganvas import` (a reference "
            "run) or `ganvas import-pth`", path=path)
    if path.stat().st_size == 0:
        raise CheckpointError("checkpoint file is empty (0 bytes)", path=path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            raw = (handle.metadata() or {}).get("ganvas")
            meta = _parse_meta(path, raw)
            tensors = {}
            if with_tensors:
                for key in handle.keys():
                    if not prefixes or key.startswith(prefixes):
                        tensors[key] = handle.get_tensor(key)
    except SafetensorError as exc:
        raise CheckpointError(f"truncated or not a safetensors checkpoint ({exc})", path=path) from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read checkpoint ({exc})", path=path) from exc
    return Checkpoint(path=path, meta=meta, tensors=tensors)


def _parse_meta(path: Path, raw: str | None) -> dict[str, Any]:
    if raw is None:
        raise CheckpointError("not a Ganvas checkpoint (no Ganvas metadata in the file)", path=path)
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise CheckpointError(f"checkpoint metadata is corrupt ({reason})", path=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not a Ganvas checkpoint (unknown format tag)", path=path)
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise CheckpointError(f"checkpoint format version {version!r} is not a version number", path=path)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is newer than this Ganvas supports ({FORMAT_VERSION})", path=path)
    for key in ("family", "model_config"):
        if key not in meta:
            raise CheckpointError(f"checkpoint metadata lacks {key!r}", path=path)
    _check_meta_types(path, meta)
    return upgrade_config_keys(meta)  # configs stored before today's field names read as today's


# The header fields other modules read, and the JSON type each must have when present.
_META_TYPES: dict[str, tuple[type, str]] = {
    "family": (str, "a string"), "model_config": (dict, "an object"), "train_config": (dict, "an object"),
    "data_config": (dict, "an object"), "dataset": (dict, "an object"), "metrics": (dict, "an object"),
    "optimizers": (dict, "an object"), "sampler": (dict, "an object"), "rng": (dict, "an object"),
    "extra": (dict, "an object"), "retunes": (list, "a list"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_meta_types(path: Path, meta: dict[str, Any]) -> None:
    """Refuse a header whose fields have the wrong JSON types (a crafted or damaged file)."""
    for key, (kind, described) in _META_TYPES.items():
        if key in meta and not isinstance(meta[key], kind):
            raise CheckpointError(f"checkpoint metadata field {key!r} must be {described}, got "
                                  f"{type(meta[key]).__name__}", path=path)
    step = meta.get("step", 0)
    if not _is_int(step) or step < 0:
        raise CheckpointError(f"checkpoint metadata step {step!r} is not a step count", path=path)
    size = meta.get("train_config", {}).get("size", [256, 256])
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s) and s > 0 for s in size)):
        raise CheckpointError(f"checkpoint train_config.size {size!r} is not [height, width]", path=path)


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: str | Path) -> None:
    """``module.load_state_dict(state)``, with a mismatch reported as a :class:`CheckpointError` naming ``path``.

    ``what`` names the network in the message (e.g. "the pix2pix network").
    """
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise CheckpointError(f"weights do not fit {what} ({detail})", path=path) from exc


def load_pth_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a PyTorch ``.pth`` state dict safely (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError("file is empty (0 bytes)", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError("file not found", path=path) from exc
    except pickle.UnpicklingError as exc:
        raise CheckpointError("refused: the file holds pickled objects other than tensors, which could run code; "
                              "Ganvas reads only plain state dicts", path=path) from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal is the user's file, not our bug
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = lines[0] if lines else type(exc).__name__
        raise CheckpointError(f"not a plain PyTorch state dict ({detail})", path=path) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("does not hold a flat mapping of tensor names to tensors", path=path)
    return {k.removeprefix("module."): v for k, v in state.items()}


SNAPSHOT_DROPPED_META = ("optimizers", "sampler", "rng")


def is_inference_tensor(name: str) -> bool:
    """Whether a checkpoint tensor is needed to run the model: generator (and encoder, EMA) weights, not
    discriminators (``net.D*``), optimizer moments, RNG states or family training state."""
    kind, _, rest = name.partition(".")
    return kind == "ema" or (kind == "net" and not rest.startswith("D"))


def _half_when_finite(value: torch.Tensor) -> torch.Tensor:
    """``value`` in fp16 when it is float32 and fits fp16's range; else unchanged (never finite -> Inf)."""
    if value.dtype != torch.float32:
        return value
    half = value.half()
    return half if bool(torch.isfinite(half).all()) or not bool(torch.isfinite(value).all()) else value


class RunCheckpoints:
    """The checkpoints of one run folder: the full state in ``latest.safetensors`` plus generator-only
    snapshots of the last ``keep_last`` checkpointed steps in ``checkpoints/step_N.safetensors``."""

    def __init__(self, run_dir: str | Path, keep_last: int = 3) -> None:
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / "checkpoints"
        self.keep_last = keep_last

    def remove_orphans(self) -> list[Path]:
        """Delete temp files of writes a kill interrupted (call before the run writes anything)."""
        return remove_orphan_temp_files(self.run_dir) + remove_orphan_temp_files(self.folder)

    @property
    def latest(self) -> Path:
        return self.run_dir / LATEST

    def step_files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"step_*{SUFFIX}"))

    def save(self, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write the full state to ``latest`` and a generator-only snapshot of ``step``, then prune old snapshots;
        returns the path of ``latest``."""
        save_checkpoint(self.latest, tensors, meta)
        snapshot = {name: _half_when_finite(value) for name, value in tensors.items() if is_inference_tensor(name)}
        snapshot_meta = {k: v for k, v in meta.items() if k not in SNAPSHOT_DROPPED_META}
        save_checkpoint(self.folder / f"step_{step:08d}{SUFFIX}", snapshot, {**snapshot_meta, "snapshot": True})
        for old in self.step_files()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return self.latest
