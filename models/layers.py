"""Small building blocks shared by several networks."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """A factory ``channels -> norm module`` for ``batch``, ``instance`` or ``none``.

    Batch norm keeps running statistics; instance norm learns no affine parameters (as in pix2pix/CycleGAN).
    """
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights from N(0, gain) and norm scales from N(1, gain); biases to zero."""

    def visit(m: nn.Module) -> None:
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    module.apply(visit)
    return module


def uses_bias(norm: str) -> bool:
    """Convolutions followed by batch norm need no bias (the norm's shift replaces it)."""
    return norm != "batch"


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) to crop back to.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        use_mode = mode if (pad_h < h and pad_w < w) else "replicate"
        x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=use_mode)
    return x, (h, w)
