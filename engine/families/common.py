"""Pieces several families share: optimizers, mixed precision, compilation, sample grids."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from engine.augment import from_unit_range
from engine.config import TrainConfig
from engine.errors import ConfigError


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
              device: torch.device) -> torch.optim.Adam:
    """Adam with the fastest implementation for the device (fused on CUDA and CPU, foreach otherwise)."""
    fused = device.type in ("cuda", "cpu")
    return torch.optim.Adam(list(params), lr=lr, betas=betas, fused=fused, foreach=None if fused else True)


def refuse_shared_adam_flags(train: TrainConfig, message: str) -> None:
    """Families with their own optimizer fields reject ``--lr/--beta1/--beta2`` rather than ignore them."""
    defaults = TrainConfig()
    if (train.lr, train.beta1, train.beta2) != (defaults.lr, defaults.beta1, defaults.beta2):
        raise ConfigError(message)


def autocast(device: torch.device, train: TrainConfig) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when enabled; a no-op on CPU/MPS (this CPU has no bf16 units)."""
    if train.amp and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_module(net: nn.Module, device: torch.device, train: TrainConfig) -> nn.Module:
    """Move to the device; channels_last on CUDA; returns the (maybe compiled) callable to use for forward."""
    net.to(device)
    if device.type == "cuda":
        net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = not train.deterministic
    if train.compile == "on" or (train.compile == "auto" and device.type == "cuda"):
        return torch.compile(net)  # type: ignore[return-value]
    return net


def image_grid(rows: Sequence[Sequence[torch.Tensor]], pad: int = 2) -> np.ndarray:
    """Tile rows of (3, H, W) images in [-1, 1] into one RGB uint8 array with white gutters."""
    height, width = rows[0][0].shape[-2:]
    n_cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (height + pad) + pad, n_cols * (width + pad) + pad, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            pixels = from_unit_range(image[:3]).permute(1, 2, 0).cpu().numpy()
            top, left = pad + r * (height + pad), pad + c * (width + pad)
            grid[top: top + height, left: left + width] = pixels
    return grid


def center_crop(item: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = item.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return item[..., top: top + size[0], left: left + size[1]]
