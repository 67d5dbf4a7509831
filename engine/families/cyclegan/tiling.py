"""Run a fully-convolutional generator on images of any size, in overlapping tiles when they are large.

The image is first reflect-padded at the bottom/right to a multiple of the generator's stride and cropped
back at the end. Above ``tile`` pixels it is cut into overlapping tiles that are translated one at a time
(memory stays bounded by one tile) and blended: in each overlap, the ``overlap // 4`` pixels next to a
tile's inner edge (those its padding corrupts) get weight 0, then a cosine ramp rises to 1, so seams
vanish. A network whose receptive radius is under ``overlap // 4`` gives the untiled result exactly (up to
float rounding); deeper networks and instance norm (per-tile statistics) give a close, seamless one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from engine.core.errors import ConfigError
from models.layers import pad_to_multiple

TileFn = Callable[[torch.Tensor], torch.Tensor]


def pad_and_run(fn: TileFn, image: torch.Tensor, multiple: int) -> torch.Tensor:
    """``fn`` on ``image`` (B, C, H, W) reflect-padded to multiples of ``multiple``, cropped back to H x W.

    Grad mode is left to the caller. ``fn`` must keep the spatial size (B, C_out, H', W') for its input.
    """
    padded, (h, w) = pad_to_multiple(image, multiple)
    out = fn(padded)
    if out.shape[-2:] != padded.shape[-2:]:
        raise ValueError(f"fn changed the spatial size {tuple(padded.shape[-2:])} to {tuple(out.shape[-2:])}")
    return out[..., :h, :w]


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile offsets along one axis: every ``step`` pixels, the last tile flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, step)) + [length - tile]


def _edge_ramp(overlap: int) -> torch.Tensor:
    """Weights for the ``overlap`` pixels at a tile's inner edge, from the edge inwards: 0s, then a cosine to 1."""
    margin = overlap // 4
    rise = overlap - 2 * margin
    ramp = torch.zeros(overlap, dtype=torch.float32)
    if rise > 0:
        t = (torch.arange(rise, dtype=torch.float32) + 0.5) / rise
        ramp[margin:margin + rise] = 0.5 - 0.5 * torch.cos(math.pi * t)
    ramp[margin + rise:] = 1.0
    return ramp


def _axis_weight(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """1-D blend weight of a tile at ``start`` of ``size`` pixels on an axis ``length`` long.

    Edges on the image border keep weight 1 (padding there matches the untiled run); inner edges ramp.
    """
    weight = torch.ones(size, dtype=torch.float32)
    ramp = _edge_ramp(min(overlap, size // 2))
    if start > 0:
        weight[: ramp.numel()] = ramp
    if start + size < length:
        weight[size - ramp.numel():] = ramp.flip(0)
    return weight


def translate_tiled(
    fn: TileFn,
    image: torch.Tensor,
    tile: int = 512,
    overlap: int = 64,
    stride_multiple: int = 4,
) -> torch.Tensor:
    """Translate ``image`` (1, C, H, W) of any size with ``fn``; returns (1, C_out, H, W) on ``image``'s device.

    Args:
        fn: a fully-convolutional map (B, C, h, w) -> (B, C_out, h, w) for h, w multiples of
            ``stride_multiple``, e.g. a generator in eval mode. It may move each tile to another device and
            back; results are accumulated on ``image``'s device.
        image: the input batch (usually one image).
        tile: largest tile side in pixels; rounded down to a multiple of ``stride_multiple``. Images whose
            padded sides both fit run in one piece.
        overlap: pixels shared by neighbouring tiles; the blend trusts only pixels at least ``overlap // 4``
            from a tile's inner edge, so choose it above four times the network's receptive radius.
        stride_multiple: the generator's stride (every tile side and offset is a multiple of it).

    Runs under :func:`torch.no_grad`.

    Example:
        >>> out = translate_tiled(lambda t: -t, torch.ones(1, 3, 101, 77), tile=64, overlap=16)
        >>> out.shape, bool((out == -1).all())
        (torch.Size([1, 3, 101, 77]), True)
    """
    if image.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) image, got shape {tuple(image.shape)}")
    if stride_multiple < 1:
        raise ConfigError(f"stride_multiple must be >= 1, got {stride_multiple}", value=stride_multiple)
    tile -= tile % stride_multiple
    if tile < stride_multiple:
        raise ConfigError(f"tile must be at least the stride {stride_multiple}, got {tile}", value=tile)
    step = (tile - overlap) // stride_multiple * stride_multiple
    if overlap < 0 or step <= 0:
        raise ConfigError(
            f"overlap must be in [0, tile - {stride_multiple}] for tile {tile}, got {overlap}", value=overlap
        )
    with torch.no_grad():
        if max(image.shape[-2:]) <= tile:
            return pad_and_run(fn, image, stride_multiple)
        padded, (h, w) = pad_to_multiple(image, stride_multiple)
        height, width = padded.shape[-2:]
        tile_h, tile_w = min(tile, height), min(tile, width)
        # float64 sums make blending a constant exact after the cast back; MPS has no float64.
        acc = torch.float32 if image.device.type == "mps" else torch.float64
        out: torch.Tensor | None = None
        total = torch.zeros(1, 1, height, width, dtype=acc, device=image.device)
        for top in _starts(height, tile_h, step):
            weight_h = _axis_weight(top, tile_h, height, overlap).to(image.device, acc)
            for left in _starts(width, tile_w, step):
                piece = fn(padded[..., top:top + tile_h, left:left + tile_w])
                if piece.shape[-2:] != (tile_h, tile_w):
                    raise ValueError(f"fn changed the tile size {(tile_h, tile_w)} to {tuple(piece.shape[-2:])}")
                if out is None:
                    out = torch.zeros(*piece.shape[:2], height, width, dtype=acc, device=image.device)
                weight = torch.outer(weight_h, _axis_weight(left, tile_w, width, overlap).to(image.device, acc))
                out[..., top:top + tile_h, left:left + tile_w] += piece.to(image.device, acc) * weight
                total[..., top:top + tile_h, left:left + tile_w] += weight
        assert out is not None
        out.div_(total)
        return out[..., :h, :w].to(piece.dtype)
