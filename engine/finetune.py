"""Start a new run from a trained model's weights (``ganvas train FAMILY --init CHECKPOINT``).

The fastest road to a model of a user's own small set is a model that already draws something close. A new run
takes the networks of another run's checkpoint or of a bundled model (its generators, and its discriminators:
from the checkpoint itself or, for a bundled model, from the file beside it; a network the source lacks starts
fresh) and trains them with its own steps, schedule and data. Optimizer state is never carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.bundled import discriminator_path
from engine.checkpoint import Checkpoint, load_checkpoint, load_weights, resolve_checkpoint
from engine.config import from_dict, replace
from engine.errors import CheckpointError, ConfigError
from engine.families.base import Trainer
from engine.registry import get_family


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
    if source.family != family_name:
        raise ConfigError(f"--init {source.path} is a {source.family} model; this run trains {family_name}",
                          value=source.family)
    config = from_dict(get_family(family_name).config_cls, source.meta["model_config"])
    return replace(config, **overrides) if overrides else config


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
    return {"source": source.path.stem if source.path.stem != "latest" else source.path.parent.name,
            "step": source.step, "networks": taken, "fresh": fresh}


def describe_init(init: dict[str, Any]) -> str:
    """One line for the start message."""
    fresh = f"; fresh {', '.join(init['fresh'])}" if init.get("fresh") else ""
    return f"initialised from {init['source']} (step {init['step']}: {', '.join(init['networks'])}{fresh})"
