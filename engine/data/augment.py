"""Augmentation on the training device with kornia, identical on input and target."""

from __future__ import annotations

from collections.abc import Sequence

import kornia
import torch

from engine.data.datasets import random_crops


def to_minus_one_one(batch_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return batch_uint8.float().div_(127.5).sub_(1.0)


def from_minus_one_one(batch: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
    return ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


class PairedAugment:
    """Random crop + horizontal flip applied once to the stacked (A, B) channels, so both halves match.

    All randomness comes from ``generator`` (a CPU :class:`torch.Generator` whose state is checkpointed).
    """

    def __init__(self, size: tuple[int, int], flip: bool, device: torch.device, generator: torch.Generator) -> None:
        self.size, self.flip, self.device, self.generator = size, flip, device, generator

    def __call__(self, items: Sequence[torch.Tensor]) -> torch.Tensor:
        batch = random_crops(items, self.size, self.generator)
        batch = to_minus_one_one(batch.to(self.device, non_blocking=True))
        if self.flip:
            flips = torch.rand(len(items), generator=self.generator) < 0.5
            if bool(flips.any()):
                mask = flips.to(self.device)
                batch = torch.where(mask.view(-1, 1, 1, 1), kornia.geometry.transform.hflip(batch), batch)
        return batch
