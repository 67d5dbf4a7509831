"""The one way a model is loaded: a checkpoint (file, run folder, bundled name or reference run) or an untrained
network of a family, rebuilt from its config and handed to the family, whose ``open_session`` makes it a
:class:`~engine.infer.sessions.Translator` or a :class:`~engine.infer.sessions.LatentExplorer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.core.checkpoint import load_weights
from engine.core.config import from_dict, to_dict
from engine.core.errors import CheckpointError, ConfigError
from engine.core.registry import get_family

if TYPE_CHECKING:
    from engine.infer.sessions import ModelSession

UNTRAINED_SIZE = (256, 256)  # the size of an untrained network whose family does not fix one


@dataclass(frozen=True)
class ModelCard:
    """What the model panel and ``ganvas info`` show about a checkpoint."""

    family: str
    input_kind: str
    size: tuple[int, int]
    step: int
    config: dict[str, Any]
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    trained: bool = True
    path: str | None = None
    title: str = ""  # a bundled model's name for people (its card's title)
    draw_as: str = ""  # what the canvas draws for it: the card's draw_mode or DataConfig.draw_as; "" = the family's
    sample: str = ""  # a drawing in assets/samples the app opens this model on

    def lines(self) -> list[str]:
        out = [f"model:    {self.title}"] if self.title else []
        out += [f"family:   {self.family}" + ("" if self.trained else "  (UNTRAINED: random weights)"),
               f"input:    {self.input_kind}", f"size:     {self.size[0]}x{self.size[1]}", f"steps:    {self.step}"]
        if self.draw_as:
            out.append(f"draws:    {self.draw_as}")
        if self.dataset:
            out.append("data:     " + ", ".join(f"{k}={v}" for k, v in self.dataset.items()))
        if self.metrics:
            out.append("metrics:  " + ", ".join(f"{k}={v}" for k, v in self.metrics.items()))
        out.append("config:   " + ", ".join(f"{k}={v}" for k, v in self.config.items()))
        return out


def model_card(path: str | Path) -> ModelCard:
    """Read a checkpoint's card from its header only."""
    from engine.infer.importing import open_metadata

    meta = open_metadata(path)
    return card_from_meta(meta, str(path))


def card_from_meta(meta: dict[str, Any], path: str | None) -> ModelCard:
    """The card of a checkpoint whose header is ``meta``."""
    family = get_family(meta["family"])
    size = tuple(meta.get("train_config", {}).get("size", (256, 256)))
    card = meta.get("card") if isinstance(meta.get("card"), dict) else {}
    trained = bool(meta.get("step", 0)) or "imported" in meta  # imported weights were trained elsewhere
    return ModelCard(meta["family"], family.input_kind, size, int(meta.get("step", 0)), meta["model_config"],
                     meta.get("dataset", {}), meta.get("metrics", {}), trained, path,
                     str(card.get("title", "")),
                     str(card.get("draw_mode") or (meta.get("data_config") or {}).get("draw_as", "")),
                     str(card.get("sample", "")))


@dataclass(frozen=True)
class LoadedNetwork:
    """A family's inference network with its weights in place, and what it came from.

    Attributes:
        network: the family's :meth:`~engine.families.base.Family.inference_network`, on the CPU.
        config: the family's config (a frozen dataclass).
        card: what the model panel shows.
        meta: the checkpoint's header (``{"family", "step": 0, "untrained": True}`` for an untrained network).
        path: the checkpoint, or None.
    """

    network: nn.Module
    config: Any
    card: ModelCard
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def batch_stats(self) -> bool | None:
        """How batch norm normalises, when the checkpoint says (imported reference weights): True for the
        input's statistics, False for the running averages; None for the family's default."""
        batch_norm = self.meta.get("inference", {}).get("batch_norm")
        return None if batch_norm is None else batch_norm == "input"


def _check_weight_shapes(family: Any, config: Any, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Build the network without memory (the ``meta`` device) and compare its tensor shapes with ``weights``,
    so a config that does not match the weights (a crafted huge ``ngf``) is refused before anything is allocated.
    """
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in family.inference_network(config).state_dict().items()}
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint config cannot build the {family.name} network ({exc})", path=path) \
            from exc
    for key, shape in shapes.items():
        if key in weights and tuple(weights[key].shape) != shape:
            raise CheckpointError(f"weights do not fit the {family.name} network built from the checkpoint's "
                                  f"config ({key}: {tuple(weights[key].shape)} in the file, {shape} expected)",
                                  path=path)


def load_network(path: str | Path) -> LoadedNetwork:
    """Rebuild a checkpoint's inference network from its own config and load its weights.

    ``path`` is a checkpoint file, a run folder, a bundled model's name, or a run folder / ``.pth`` of the
    pix2pix/CycleGAN reference implementation, imported in memory (:func:`engine.infer.importing.open_checkpoint`).
    """
    from engine.infer.importing import open_checkpoint

    checkpoint = open_checkpoint(path)
    family = get_family(checkpoint.family)
    try:
        config = from_dict(family.config_cls, checkpoint.meta["model_config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint config is invalid ({exc})", path=checkpoint.path) from exc
    weights = family.inference_weights(checkpoint)
    _check_weight_shapes(family, config, weights, checkpoint.path)
    network = family.inference_network(config)
    load_weights(network, weights, f"the {checkpoint.family} network", checkpoint.path)
    return LoadedNetwork(network, config, card_from_meta(checkpoint.meta, str(checkpoint.path)), checkpoint.meta,
                         checkpoint.path)


def untrained_network(family_name: str, size: tuple[int, int] | None = None, config: Any = None, seed: int = 0,
                      **fields: Any) -> LoadedNetwork:
    """A family's inference network with random weights (seeded; the global random state is left alone), clearly
    labelled untrained, so every control can be tried before training.

    Args:
        family_name: a registered family.
        size: the input size it is shown at; a family that fixes its size (StyleGAN2's resolution) uses its own.
        config: the family's config; else built from ``fields``.
    """
    family = get_family(family_name)
    model_config = config if config is not None else family.config_cls(**fields)
    size = family.native_size(model_config) or size or UNTRAINED_SIZE
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = family.inference_network(model_config)
    card = ModelCard(family_name, family.input_kind, tuple(size), 0, to_dict(model_config), trained=False)
    return LoadedNetwork(network, model_config, card, {"family": family_name, "step": 0, "untrained": True})


def open_model(source: str | Path, device: str = "auto", backend: str = "torch") -> ModelSession:
    """Open any model (checkpoint file, run folder, bundled name, reference run): its family's session, a
    translator or a latent explorer, on ``device``; translators run full passes on ``backend``."""
    loaded = load_network(source)
    return get_family(loaded.card.family).open_session(loaded, device, backend)


def untrained_model(family_name: str, size: tuple[int, int] | None = None, device: str = "auto",
                    **fields: Any) -> ModelSession:
    """An untrained network of a family as its session (see :func:`untrained_network`)."""
    loaded = untrained_network(family_name, size, **fields)
    return get_family(family_name).open_session(loaded, device, "torch")
