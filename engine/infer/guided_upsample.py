"""Edge-aware upsampling of a coarse output with the full-size input as guide (fast guided filter).

A live preview runs the network on a downsampled canvas; upsampling its output bilinearly blurs every edge. The
guided filter (He, Sun and Tang) models the output locally as a linear function of the guide, ``q = A I + b``.
Fitting ``A`` and ``b`` on the small pair and applying them to the full-size guide (He and Sun's fast variant)
puts the output's edges back where the input has them: label boundaries stay sharp, flat regions stay smooth.

It runs in NumPy and OpenCV on contiguous per-channel planes, with the 3x3 systems solved in closed form: the
arrays are small, and a few dozen tiny torch ops would cost more in dispatch than in arithmetic.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def _box(plane: np.ndarray, radius: int) -> np.ndarray:
    """Mean of an (H, W) float32 plane over ``(2r + 1)`` square windows (mirrored borders)."""
    side = 2 * radius + 1
    return cv2.boxFilter(plane, -1, (side, side), borderType=cv2.BORDER_REFLECT)


def _inverse3(var: dict[tuple[int, int], np.ndarray]) -> list[list[np.ndarray]]:
    """Per-pixel inverse of symmetric 3x3 matrices given as planes ``var[j, k]`` (j <= k), by the adjugate."""
    a, b, c, d, e, f = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
    m00, m01, m02 = d * f - e * e, c * e - b * f, b * e - c * d
    m11, m12, m22 = a * f - c * c, b * c - a * e, a * d - b * b
    scale = 1.0 / (a * m00 + b * m01 + c * m02)
    return [[m00 * scale, m01 * scale, m02 * scale], [m01 * scale, m11 * scale, m12 * scale],
            [m02 * scale, m12 * scale, m22 * scale]]


def _fit(output: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> list[np.ndarray]:
    """Window-averaged coefficients: ``A`` (C_in x C_out planes, row-major) then ``b`` (C_out planes).

    ``output`` (C_out, h, w) and ``guide`` (C_in, h, w) are float32; planes keep every operation on contiguous
    memory.
    """
    channels, out_channels = len(guide), len(output)
    mean_i = [_box(g, radius) for g in guide]
    mean_p = [_box(p, radius) for p in output]
    cov = [[_box(g * p, radius) - mi * mp for p, mp in zip(output, mean_p, strict=True)]
           for g, mi in zip(guide, mean_i, strict=True)]
    var = {(j, k): _box(guide[j] * guide[k], radius) - mean_i[j] * mean_i[k] + (eps if j == k else 0.0)
           for j in range(channels) for k in range(j, channels)}
    if channels == 1:
        coeff = [[c / var[0, 0] for c in cov[0]]]
    elif channels == 3:
        inverse = _inverse3(var)
        coeff = [[sum(inverse[i][j] * cov[j][k] for j in range(3)) for k in range(out_channels)] for i in range(3)]
    else:
        system = np.stack([np.stack([var[min(j, k), max(j, k)] for k in range(channels)], -1)
                           for j in range(channels)], -2)
        solved = np.linalg.solve(system, np.stack([np.stack(row, -1) for row in cov], -2))
        coeff = [[solved[..., i, k] for k in range(out_channels)] for i in range(channels)]
    offset = [mean_p[k] - sum(coeff[j][k] * mean_i[j] for j in range(channels)) for k in range(out_channels)]
    # Average the fits of all windows covering each pixel.
    planes = [a for row in coeff for a in row] + offset
    return [_box(np.ascontiguousarray(plane, dtype=np.float32), radius) for plane in planes]


def guided_upsample(
    output: torch.Tensor, guide_small: torch.Tensor, guide: torch.Tensor, size: tuple[int, int] | None = None,
    radius: int = 1, eps: float = 1e-2,
) -> torch.Tensor:
    """Upsample ``output`` to the size of ``guide`` (or ``size``), following the edges of ``guide``.

    Runs in NumPy and OpenCV on the CPU and returns a tensor on ``output``'s device.

    Args:
        output: coarse result (B, C_out, h, w).
        guide_small: the input the coarse result was computed from (B, C_in, h, w).
        guide: the full-size input (B, C_in, H, W).
        size: result size when not ``(H, W)``; the guide is area-resized to it first.
        radius: window radius of the local linear fit, in coarse pixels.
        eps: regularisation of the fit: larger keeps the result closer to a local mean (smoother).

    Returns:
        (B, C_out, H, W) or (B, C_out, *size), same dtype as ``output``.

    Example:
        >>> guide = torch.rand(1, 3, 64, 64)
        >>> small = torch.nn.functional.interpolate(guide, size=(16, 16), mode="area")
        >>> guided_upsample(small * 2 - 1, small, guide).shape
        torch.Size([1, 3, 64, 64])
    """
    if output.shape[-2:] != guide_small.shape[-2:] or output.shape[0] != guide.shape[0]:
        raise ValueError(f"output {tuple(output.shape)} and guide_small {tuple(guide_small.shape)} must share "
                         f"batch and size; guide is {tuple(guide.shape)}")
    height, width = size or guide.shape[-2:]
    results = []
    for coarse, small, full in zip(*(_planes(x) for x in (output, guide_small, guide)), strict=True):
        if full[0].shape != (height, width):
            full = [cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA) for plane in full]
        fits = [cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
                for plane in _fit(coarse, small, radius, eps)]
        channels, out_channels = len(full), len(coarse)
        offsets = fits[channels * out_channels:]
        results.append(np.stack([offsets[k] + sum(fits[c * out_channels + k] * full[c] for c in range(channels))
                                 for k in range(out_channels)]))
    return torch.from_numpy(np.stack(results)).to(device=output.device, dtype=output.dtype)


def _planes(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) tensor -> float32 array on the CPU (a sample's channels are its contiguous planes)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()
