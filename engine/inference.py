"""Inference sessions: a generator rebuilt from a checkpoint alone, ready to translate images."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.augment import from_unit_range
from engine.checkpoint import load_checkpoint, load_weights, read_metadata
from engine.config import from_dict
from engine.device import resolve_device
from engine.errors import CheckpointError, ConfigError
from engine.families.base import inference_mode
from engine.registry import get_family


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

    def lines(self) -> list[str]:
        out = [f"family:   {self.family}" + ("" if self.trained else "  (UNTRAINED: random weights)"),
               f"input:    {self.input_kind}", f"size:     {self.size[0]}x{self.size[1]}", f"steps:    {self.step}"]
        if self.dataset:
            out.append("data:     " + ", ".join(f"{k}={v}" for k, v in self.dataset.items()))
        if self.metrics:
            out.append("metrics:  " + ", ".join(f"{k}={v}" for k, v in self.metrics.items()))
        out.append("config:   " + ", ".join(f"{k}={v}" for k, v in self.config.items()))
        return out


def model_card(path: str | Path) -> ModelCard:
    """Read a checkpoint's card from its header only."""
    meta = read_metadata(path)
    return card_from_meta(meta, str(path))


def card_from_meta(meta: dict[str, Any], path: str | None) -> ModelCard:
    """The card of a checkpoint whose header is ``meta``."""
    family = get_family(meta["family"])
    size = tuple(meta.get("train_config", {}).get("size", (256, 256)))
    return ModelCard(meta["family"], family.input_kind, size, int(meta.get("step", 0)), meta["model_config"],
                     meta.get("dataset", {}), meta.get("metrics", {}), bool(meta.get("step", 0)), path)


class InferenceSession:
    """Translate images with the generator of a checkpoint (or an untrained network of a family).

    Thread-safe: calls are serialised by a lock, so a GUI worker thread and the main thread may share it.

    Example:
        >>> session = InferenceSession.untrained("pix2pix", size=(64, 64), depth=6, ngf=8)
        >>> session.translate(np.zeros((64, 64, 3), np.uint8)).shape
        (64, 64, 3)
    """

    def __init__(self, generator: nn.Module, card: ModelCard, device: torch.device) -> None:
        self.generator = generator.to(device)
        self.card = card
        self.family = get_family(card.family)
        self.device = device
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> InferenceSession:
        """Rebuild the generator from the checkpoint's own config and load its weights."""
        checkpoint = load_checkpoint(path, prefixes=("net.",))
        family = get_family(checkpoint.family)
        try:
            config = from_dict(family.config_cls, checkpoint.meta["model_config"])
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint config is invalid ({exc})", path=checkpoint.path) from exc
        generator = family.inference_network(config)
        weights = family.inference_weights(checkpoint)
        load_weights(generator, weights, f"the {checkpoint.family} network", checkpoint.path)
        return cls(generator, card_from_meta(checkpoint.meta, str(checkpoint.path)), resolve_device(device))

    @classmethod
    def untrained(cls, family_name: str, size: tuple[int, int] = (256, 256), device: str = "auto",
                  **config: Any) -> InferenceSession:
        """A clearly labelled untrained model so every control can be exercised before training."""
        family = get_family(family_name)
        model_config = family.config_cls(**config)
        card = ModelCard(family_name, family.input_kind, size, 0, vars(model_config), trained=False)
        torch.manual_seed(0)
        return cls(family.inference_network(model_config), card, resolve_device(device))

    @property
    def size(self) -> tuple[int, int]:
        return self.card.size

    def translate_tensor(self, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] at a size the network accepts -> (B, C', H, W) in [-1, 1].

        ``options`` are the family's (e.g. ``direction`` for CycleGAN).
        """
        with self._lock, inference_mode(self.generator):
            return self.family.infer(self.generator, batch.to(self.device), **options).float()

    def translate(self, image: np.ndarray, keep_size: bool = False, **options: Any) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> RGB uint8 (label-map families take a colour label map; see ``prepare_input``).

        Families trained at a fixed size (pix2pix) see the input resized to that size and answer at it (or back
        at the input size with ``keep_size``); fully convolutional ones (CycleGAN) keep the input size.
        """
        from engine.datasets import resize_rgb

        batch = self.family.prepare_input(image, self.card)
        output = from_unit_range(self.translate_tensor(batch, **options))[0].permute(1, 2, 0).cpu().numpy()
        if keep_size and output.shape[:2] != image.shape[:2]:
            output = resize_rgb(output, image.shape[0], image.shape[1])
        return output
