"""Image quality metrics on batches in [-1, 1]: L1, PSNR and SSIM (kornia)."""

from __future__ import annotations

import kornia
import torch


def _to_zero_one(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (clipped): the scale the metrics are reported on."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale. Shape: (B, C, H, W) x2 -> (B,)."""
    return (_to_zero_one(pred) - _to_zero_one(target)).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1). Shape: (B, C, H, W) x2 -> (B,)."""
    mse = (_to_zero_one(pred) - _to_zero_one(target)).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean structural similarity per image (Gaussian window 11, data range 1). Shape: -> (B,)."""
    return kornia.metrics.ssim(_to_zero_one(pred), _to_zero_one(target), window).flatten(1).mean(1)


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"L1": l1(pred, target), "PSNR": psnr(pred, target), "SSIM": ssim(pred, target)}
