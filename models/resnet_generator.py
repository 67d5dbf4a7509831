"""ResNet generator of CycleGAN (Zhu et al., 2017), after Johnson et al.'s style-transfer network."""

from __future__ import annotations

import torch
from torch import nn

from models.layers import init_weights, norm_layer, uses_bias

UPSAMPLINGS = ("transpose", "resize", "bilinear")


class ResidualBlock(nn.Module):
    """``x + f(x)`` where ``f`` is (reflection pad, 3x3 conv, norm, ReLU) twice, the last ReLU left out.

    Shape:
        (B, channels, H, W) -> (B, channels, H, W).
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample(in_ch: int, out_ch: int, mode: str, bias: bool) -> list[nn.Module]:
    """Double H and W: a stride-2 transposed conv, or a resize followed by a 3x3 conv (no checkerboard)."""
    if mode == "transpose":
        return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    resize_mode = "nearest" if mode == "resize" else "bilinear"
    return [
        nn.Upsample(scale_factor=2, mode=resize_mode),
        nn.ReflectionPad2d(1),
        nn.Conv2d(in_ch, out_ch, 3, bias=bias),
    ]


class ResnetGenerator(nn.Module):
    """Encoder, residual blocks at 1/4 resolution, decoder; maps images in [-1, 1] to images in [-1, 1].

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: output channels.
        ngf: filters of the stem; the two downsamplings give ``2 * ngf`` and ``4 * ngf``.
        n_blocks: residual blocks at the bottleneck (9 for 256 px training crops, 6 for 128 px).
        norm: ``instance`` (CycleGAN), ``batch`` or ``none``.
        upsampling: ``transpose`` (stride-2 transposed conv, as in the paper), ``resize`` (nearest x2 then a
            3x3 conv, which avoids checkerboard artefacts) or ``bilinear`` (bilinear x2 then a 3x3 conv).
        dropout: dropout 0.5 between the two convs of each residual block.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H, W), H and W multiples of :attr:`stride` (4).

    Example:
        >>> net = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
        >>> net(torch.zeros(1, 3, 32, 48)).shape
        torch.Size([1, 3, 32, 48])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        upsampling: str = "transpose",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if upsampling not in UPSAMPLINGS:
            raise ValueError(f"unknown upsampling {upsampling!r}; choose one of {', '.join(UPSAMPLINGS)}")
        make_norm = norm_layer(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResidualBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [*_upsample(ngf * mult, ngf * mult // 2, upsampling, bias), make_norm(ngf * mult // 2),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    @property
    def stride(self) -> int:
        """H and W must be multiples of this (two stride-2 downsamplings)."""
        return 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f"ResNet generator needs H and W divisible by {self.stride}, got {h}x{w}")
        return self.model(x)
