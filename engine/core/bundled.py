"""Bundled models: trained checkpoints shipped in ``assets/models`` that the app opens on, found by name.

A bundled model is an ordinary Ganvas checkpoint (:mod:`engine.core.checkpoint`) cut down to what inference and
fine-tuning need: the generator networks (``G_ema`` instead of ``G`` where the family keeps an average) and,
unless left out, the discriminators in a file of the same name under ``assets/models/discriminators`` (so each
file stays small and the app reads only the generator). Floating-point tensors are stored as float16 and load into float32
networks. The header keeps the configs (so the file alone rebuilds its networks) and adds a ``card``: title,
task, draw mode, dataset name and licence, the recipe that made it, its wall time and val metrics. It never holds
a path of the machine that trained it: :func:`make_bundle` refuses absolute paths in the header.

Example:
    >>> [m.name for m in list_bundled()] == sorted(m.name for m in list_bundled())
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.core.checkpoint import SUFFIX, load_checkpoint, models_folder, read_metadata, save_checkpoint
from engine.core.errors import CheckpointError, ConfigError, GanvasError

CARD_FIELDS = ("title", "task", "draw_mode", "dataset", "licence", "recipe", "wall_time")
DRAW_MODES = ("label", "edges", "sketch", "photo", "latent")
STORAGE_DTYPE = torch.float16
DISCRIMINATORS = "discriminators"  # sub-folder of assets/models holding each model's discriminators
# Header entries of a training checkpoint that belong to the run, not to the model: dropped from bundles.
RUN_STATE_KEYS = ("lr_schedule", "optimizers", "sampler", "rng", "extra", "dataset", "epoch", "created")


@dataclass(frozen=True)
class BundledModel:
    """One file of ``assets/models``: its name (the file stem), card and family, or why it cannot be read."""

    name: str
    path: Path
    family: str = ""
    card: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def title(self) -> str:
        return str(self.card.get("title") or self.name)

    @property
    def draw_mode(self) -> str:
        return str(self.card.get("draw_mode") or "")

    def lines(self) -> list[str]:
        """What ``ganvas models`` prints for this model."""
        if self.error:
            return [f"{self.name}: DAMAGED ({self.error})"]
        size_mb = self.path.stat().st_size / 2**20
        out = [f"{self.name}: {self.title}  [{self.family}, {size_mb:.1f} MB]"]
        for key in ("task", "draw_mode", "dataset", "licence", "wall_time", "recipe"):
            if self.card.get(key):
                out.append(f"    {key + ':':11s}{self.card[key]}")
        for key, value in (self.card.get("metrics") or {}).items():
            out.append(f"    {'metric:':11s}{key} = {value}")
        return out


def read_bundled(path: Path) -> BundledModel:
    """The card of one bundled file; a damaged file gives a model with ``error`` set instead of raising."""
    try:
        meta = read_metadata(path)
        card = meta.get("card")
        if not isinstance(card, dict):
            raise CheckpointError("bundled model has no card in its header", path=path)
        return BundledModel(path.stem, path, str(meta["family"]), card)
    except (GanvasError, OSError) as exc:
        return BundledModel(path.stem, path, error=str(exc))


def list_bundled() -> list[BundledModel]:
    """Every ``*.safetensors`` in ``assets/models`` by name; damaged files are listed with their error."""
    folder = models_folder()
    if not folder.is_dir():
        return []
    return [read_bundled(path) for path in sorted(folder.glob(f"*{SUFFIX}"), key=lambda path: path.stem)]


def _split_networks(names: list[str]) -> tuple[list[str], list[str]]:
    """Network tensors of a bundle: (generators, ``G_ema`` replacing ``G``; discriminators)."""
    nets = {name.split(".")[1] for name in names if name.startswith("net.")}
    generators = {net for net in nets if not net.startswith("D") and not (net == "G" and "G_ema" in nets)}
    discriminators = {net for net in nets if net.startswith("D")}
    pick = lambda keep: [name for name in names if name.startswith("net.") and name.split(".")[1] in keep]  # noqa: E731
    return pick(generators), pick(discriminators)


def discriminator_path(model_path: Path) -> Path:
    """Where the discriminators of a bundled model are kept (a file of their own, for fine-tuning)."""
    return model_path.parent / DISCRIMINATORS / model_path.name


def _check_card(card: dict[str, Any]) -> None:
    missing = [key for key in CARD_FIELDS if not card.get(key)]
    if missing:
        raise ConfigError(f"model card lacks {', '.join(missing)} (needs {', '.join(CARD_FIELDS)})", value=card)
    if card["draw_mode"] not in DRAW_MODES:
        raise ConfigError(f"card draw_mode {card['draw_mode']!r}: expected one of {', '.join(DRAW_MODES)}",
                          value=card["draw_mode"])


def machine_paths(value: Any, where: str = "") -> list[str]:
    """Entries of a JSON-like value holding an absolute or home path (``where`` names the entry)."""
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in machine_paths(item, f"{where}.{key}".lstrip("."))]
    if isinstance(value, list | tuple):
        return [hit for i, item in enumerate(value) for hit in machine_paths(item, f"{where}[{i}]")]
    if isinstance(value, str) and any(word.startswith(("/", "~")) or os.path.isabs(word) for word in value.split()):
        return [f"{where}={value!r}"]
    return []


def make_bundle(source: str | Path, out: str | Path, card: dict[str, Any], discriminator: bool = True) -> Path:
    """Write the bundled form of a checkpoint (or a run folder's latest) to ``out``.

    Args:
        source: training checkpoint or run folder.
        out: the ``.safetensors`` file to write; its stem is the model's name.
        card: the model card (:data:`CARD_FIELDS`, plus ``metrics`` and any notes).
        discriminator: also write the discriminators (to :func:`discriminator_path`), for fine-tuning.

    Raises:
        ConfigError: the card is incomplete, or the header would carry a path of this machine.
        CheckpointError: no generator, or weights that float16 cannot hold.
    """
    _check_card(card)
    checkpoint = load_checkpoint(source)
    meta = {key: value for key, value in checkpoint.meta.items()
            if key not in RUN_STATE_KEYS and key not in ("format", "format_version")}
    data = dict(meta.get("data_config", {}))
    if data:
        data["path"] = ""  # the card names the dataset; a path here would be this machine's
        meta["data_config"] = data
    train = dict(meta.get("train_config", {}))
    if train:
        train["device"] = "auto"
        meta["train_config"] = train
    meta.update({"dataset": {"name": card["dataset"], "licence": card["licence"]}, "card": card,
                 "metrics": dict(card.get("metrics") or {}),
                 "storage_dtype": str(STORAGE_DTYPE).removeprefix("torch.")})
    leaks = machine_paths(meta)
    if leaks:
        raise ConfigError("a bundled model must not carry paths of this machine: " + "; ".join(leaks), value=leaks)
    generators, discriminators = _split_networks(list(checkpoint.tensors))
    if not generators:
        raise CheckpointError("checkpoint holds no generator weights to bundle", path=checkpoint.path)
    if not discriminator:
        discriminators = []
    stored = {name: _stored(checkpoint.tensors[name]) for name in generators + discriminators}
    overflow = [name for name in stored if stored[name].is_floating_point() and not bool(stored[name].isfinite().all())]
    if overflow:
        raise CheckpointError(f"{', '.join(overflow[:3])} holds values outside float16's range (or NaN/Inf): "
                              "it cannot be bundled in fp16", path=checkpoint.path)
    out = Path(out)
    if discriminators:
        save_checkpoint(discriminator_path(out), {n: stored[n] for n in discriminators}, meta)
    return save_checkpoint(out, {name: stored[name] for name in generators}, meta)


def _stored(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(STORAGE_DTYPE).contiguous() if tensor.is_floating_point() else tensor.contiguous()
