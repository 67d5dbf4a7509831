"""U-Net generator of pix2pix (Isola et al., 2017): an encoder-decoder with skip connections."""

from __future__ import annotations

import torch
from torch import nn

from models.layers import init_weights, norm_layer, uses_bias


class _UNetLevel(nn.Module):
    """One level: down-conv, the inner levels, up-conv, then concatenation with the input (skip)."""

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        bias = uses_bias(norm)
        in_channels = outer if in_channels is None else in_channels
        down = [nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1), nn.Tanh()]
            layers = down + [submodule] + up
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias), make_norm(outer)]
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            down = [nn.LeakyReLU(0.2, True)] + down + [make_norm(inner)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias),
                  make_norm(outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
            layers = down + [submodule] + up
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UNetGenerator(nn.Module):
    """U-Net mapping a (B, in_channels, H, W) image in [-1, 1] to (B, out_channels, H, W) in [-1, 1].

    Args:
        in_channels: input channels (3 for RGB, or the number of label classes).
        out_channels: output channels.
        depth: number of stride-2 downsamplings; H and W must be multiples of ``2**depth``
            (depth 8 is "U-Net-256", depth 7 is "U-Net-128").
        ngf: filters in the outermost layer; inner layers double up to ``8 * ngf``.
        norm: ``batch``, ``instance`` or ``none``.
        dropout: dropout 0.5 in the three innermost decoder levels below the bottleneck (the pix2pix noise).

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H, W).

    Example:
        >>> net = UNetGenerator(3, 3, depth=5, ngf=8)
        >>> net(torch.zeros(1, 3, 64, 96)).shape
        torch.Size([1, 3, 64, 96])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if depth < 5:
            raise ValueError(f"U-Net depth must be >= 5, got {depth}")
        self.depth = depth
        level = _UNetLevel(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(depth - 5):
            level = _UNetLevel(ngf * 8, ngf * 8, submodule=level, norm=norm, dropout=dropout)
        level = _UNetLevel(ngf * 4, ngf * 8, submodule=level, norm=norm)
        level = _UNetLevel(ngf * 2, ngf * 4, submodule=level, norm=norm)
        level = _UNetLevel(ngf, ngf * 2, submodule=level, norm=norm)
        self.model = _UNetLevel(out_channels, ngf, in_channels=in_channels, submodule=level, outermost=True,
                                norm=norm)
        init_weights(self)

    @property
    def stride(self) -> int:
        """H and W must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f"U-Net of depth {self.depth} needs H and W divisible by {self.stride}, got {h}x{w}")
        return self.model(x)
