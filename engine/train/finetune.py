"""Start a new run from a trained model's weights (``ganvas train FAMILY --init CHECKPOINT``).

The fastest road to a model of a user's own small set is a model that already draws something close. A new run
takes the networks of another run's checkpoint or of a bundled model (its generators, and its discriminators:
from the checkpoint itself or, for a bundled model, from the file beside it; a network the source lacks starts
fresh) and trains them with its own steps, schedule and data. Optimizer state is never carried over.

The training window checks a choice with :func:`inspect_source` (headers only) and names it in the spec it sends
the training process under :data:`SPEC_KEY`; the process reads the weights with :func:`read_source`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

from engine.core.bundled import discriminator_path
from engine.core.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_weights,
    read_metadata,
    resolve_checkpoint,
)
from engine.core.config import from_dict, replace
from engine.core.errors import CheckpointError, ConfigError
from engine.core.registry import get_family
from engine.train.trainer import Trainer

# The key of a spec JSON (``python -m engine.train.train_process --spec``) naming the model a new run starts from: a
# checkpoint file, a run folder or a bundled model's name. ``init`` itself is the record of what was loaded.
SPEC_KEY = "init_from"


@dataclass(frozen=True)
class SourceInfo:
    """What a fine-tuning source is, read from its header alone (for the training window to show and lock).

    ``name`` is what the new run records as its ``init`` source; ``title`` is a bundled model's card title (else
    the name); ``size`` is the training size the source was made at; ``networks`` the networks it holds.
    """

    path: Path
    name: str
    title: str
    family: str
    step: int
    model_config: dict[str, Any]
    size: tuple[int, int]
    networks: tuple[str, ...]


def source_name(path: Path) -> str:
    """A source's name for the run's record: a run's folder name for its ``latest``, else the file's stem."""
    return path.stem if path.stem != "latest" else path.parent.name


def inspect_source(source: str | Path) -> SourceInfo:
    """Check that ``source`` (checkpoint, run folder or bundled name) can start a run, reading headers only.

    Raises:
        CheckpointError: missing, truncated or damaged (a bundle's discriminator file too), not a Ganvas
            checkpoint, or no generator weights.
        ConfigError: its network config is invalid. RegistryError: its family is unknown here.
    """
    path = resolve_checkpoint(source)
    meta = read_metadata(path)
    from_dict(get_family(meta["family"]).config_cls, meta["model_config"])
    names = _network_names(path)
    if not any(not name.startswith("D") for name in names):
        raise CheckpointError("holds no generator weights to start a run from", path=path)
    beside = discriminator_path(path)
    if beside.is_file():
        names |= _network_names(beside)
    card = meta.get("card") if isinstance(meta.get("card"), dict) else {}
    size = meta.get("train_config", {}).get("size", [256, 256])
    return SourceInfo(path=path, name=source_name(path), title=str(card.get("title") or source_name(path)),
                      family=meta["family"], step=int(meta.get("step", 0)), model_config=dict(meta["model_config"]),
                      size=(int(size[0]), int(size[1])),
                      networks=tuple(sorted(names, key=lambda name: (name.startswith("D"), name))))


def _network_names(path: Path) -> set[str]:
    """The networks (``G``, ``D_A``...) a checkpoint file holds, from its header; damaged files raise."""
    read_metadata(path)
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return {key.split(".")[1] for key in handle.keys() if key.startswith("net.") and key.count(".") >= 2}


def check_family(family_name: str, source: Checkpoint | SourceInfo) -> None:
    """Raises ConfigError when ``source`` is of another family than the run's."""
    if source.family != family_name:
        raise ConfigError(f"the model to start from ({source.path}) is a {source.family} model; this run trains "
                          f"{family_name}", value=source.family)


def read_source(source: str | Path) -> Checkpoint:
    """The networks of ``source`` (checkpoint, run folder or bundled name), with a bundle's discriminators."""
    path = resolve_checkpoint(source)
    checkpoint = load_checkpoint(path, prefixes=("net.",))
    beside = discriminator_path(path)
    if beside.is_file():
        checkpoint.tensors.update(load_checkpoint(beside, prefixes=("net.",)).tensors)
    return checkpoint


def init_model_config(family_name: str, source: Checkpoint, overrides: dict[str, Any]) -> Any:
    """The new run's model config: the source's, with ``overrides`` (e.g. loss weights) applied.

    Raises:
        ConfigError: the source is of another family or its config is invalid.
    """
    check_family(family_name, source)
    config = from_dict(get_family(family_name).config_cls, source.meta["model_config"])
    return replace(config, **overrides) if overrides else config


def fit_palette_to_data(family_name: str, config: Any, draw_as: str) -> Any:
    """``config`` for a run whose input side is ``draw_as``: an image model that drew label maps in a palette
    (``facades``) and now learns from edges, sketches or photos draws those, so its palette is cleared (the app
    would otherwise offer label colours for it). Label families (SPADE) always keep theirs."""
    if draw_as in ("edges", "sketch", "photo") and getattr(config, "palette", "") and \
            get_family(family_name).input_kind == "image":
        return replace(config, palette="")
    return config


def load_initial_weights(trainer: Trainer, source: Checkpoint) -> dict[str, Any]:
    """Load ``source``'s networks into a fresh trainer; returns what was taken, for the run's record.

    A network the source lacks keeps its fresh weights (a bundled model without discriminators starts a new one);
    StyleGAN2's ``G`` starts from ``G_ema`` when only the average was shipped.

    Raises:
        CheckpointError: the weights do not fit the run's networks (a changed width or depth).
    """
    taken, fresh = [], []
    for name, net in trainer.nets.items():
        group = name if source.has_group(f"net.{name}") else ("G_ema" if name == "G" else "")
        if not group or not source.has_group(f"net.{group}"):
            fresh.append(name)
            continue
        state = {key: value.float() if value.is_floating_point() else value
                 for key, value in source.group(f"net.{group}").items()}
        load_weights(net, state, f"this run's {name}", source.path)
        taken.append(name)
    if not any(not name.startswith("D") for name in taken):
        raise CheckpointError("holds none of this run's generators", path=source.path)
    return {"source": source_name(source.path), "step": source.step, "networks": taken, "fresh": fresh}


def describe_init(init: dict[str, Any]) -> str:
    """One line for the start message."""
    fresh = f"; fresh {', '.join(init['fresh'])}" if init.get("fresh") else ""
    return f"initialised from {init['source']} (step {init['step']}: {', '.join(init['networks'])}{fresh})"
