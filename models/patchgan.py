"""PatchGAN discriminator: classifies overlapping patches as real or fake."""

from __future__ import annotations

import torch
from torch import nn

from models.layers import init_weights, norm_layer, uses_bias


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field in pixels of one output logit (70 for the default ``n_layers=3``)."""
    field = 1
    # Walk back from the output: final 4x4 stride-1 conv, a 4x4 stride-1 conv, then n_layers 4x4 stride-2 convs.
    for stride in [1, 1] + [2] * n_layers:
        field = (field - 1) * stride + 4
    return field


class PatchDiscriminator(nn.Module):
    """PatchGAN of pix2pix: a grid of logits, one per overlapping patch.

    Args:
        in_channels: channels of the (condition + image) input.
        ndf: filters in the first layer.
        n_layers: stride-2 layers; 3 gives the 70x70 receptive field.
        norm: ``batch``, ``instance`` or ``none``.

    Shape:
        (B, in_channels, H, W) -> (B, 1, H', W') logits.
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        bias = uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
