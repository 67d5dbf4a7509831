"""Pieces several families share: optimizers, mixed precision, compilation, sample grids."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.config import TrainConfig
from engine.core.device import cpu_has_bf16
from engine.data.augment import from_minus_one_one


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
              device: torch.device) -> torch.optim.Adam:
    """Adam with the fastest implementation for the device (fused on CUDA and CPU, foreach otherwise)."""
    fused = device.type in ("cuda", "cpu")
    return torch.optim.Adam(list(params), lr=lr, betas=betas, fused=fused, foreach=None if fused else True)


def bf16_capable(device: torch.device) -> bool:
    """Whether the GPU computes in bfloat16 natively (Ampere, compute capability 8.0, and later)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def choose_precision(device: torch.device, amp: bool,
                     bf16_supported: Callable[[torch.device], bool] | None = None, cpu_bf16: bool = False) -> str:
    """``fp32``, or with ``amp`` on CUDA ``bf16`` where the GPU supports it and ``fp16`` (which needs a gradient
    scaler) otherwise; on the CPU ``bf16`` only when asked (``cpu_bf16``) and the CPU has bf16 units. Never
    reduced precision on MPS.

    Example:
        >>> choose_precision(torch.device("cpu"), amp=True)
        'fp32'
    """
    if device.type == "cpu":
        if not cpu_bf16:
            return "fp32"
        return "bf16" if (bf16_supported(device) if bf16_supported else cpu_has_bf16()) else "fp32"
    if not amp or device.type != "cuda":
        return "fp32"
    return "bf16" if (bf16_supported or bf16_capable)(device) else "fp16"


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_to(device_type: str, kind: str) -> contextlib.AbstractContextManager:
    """Autocast on ``device_type`` to precision ``kind`` (a :func:`choose_precision` answer; ``fp32``: a no-op)."""
    return contextlib.nullcontext() if kind == "fp32" else torch.autocast(device_type, dtype=AUTOCAST_DTYPES[kind])


class Precision:
    """A trainer's arithmetic: the autocast dtype of its forward passes and, for fp16, the gradient scaler.

    Families call :meth:`backward` and :meth:`step` (through ``Trainer.backward`` / ``Trainer.optimizer_step``);
    the scaler's state travels in the checkpoint so a resumed fp16 run continues exactly.
    """

    def __init__(self, device: torch.device, amp: bool,
                 bf16_supported: Callable[[torch.device], bool] | None = None, cpu_bf16: bool = False) -> None:
        self.device_type = device.type
        self.kind = choose_precision(device, amp, bf16_supported, cpu_bf16)
        self.scaler = torch.amp.GradScaler("cuda") if self.kind == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast_to(self.device_type, self.kind)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply the gradients; with fp16, unscaled, skipped when they overflowed, and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def autocast(device: torch.device, train: TrainConfig) -> contextlib.AbstractContextManager:
    """Autocast to the dtype :func:`choose_precision` picks (bf16 or fp16 on CUDA with ``amp``, bf16 on a CPU
    with ``cpu_bf16`` and bf16 units; else a no-op)."""
    return autocast_to(device.type, choose_precision(device, train.amp, cpu_bf16=train.cpu_bf16))


def prepare_module(net: nn.Module, device: torch.device, train: TrainConfig) -> nn.Module:
    """Move to the device; channels_last on CUDA; returns the (maybe compiled) callable to use for forward."""
    net.to(device)
    if device.type == "cuda":
        if train.channels_last:
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
            pixels = from_minus_one_one(image[:3]).permute(1, 2, 0).cpu().numpy()
            top, left = pad + r * (height + pad), pad + c * (width + pad)
            grid[top: top + height, left: left + width] = pixels
    return grid


def center_crop(item: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = item.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return item[..., top: top + size[0], left: left + size[1]]
