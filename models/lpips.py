"""LPIPS perceptual distance (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018) on a VGG16 backbone. The module ships no weights: load a VGG16 state dict into
``features`` (torchvision's key layout, ``features.N.weight``) and optionally the per-channel linear weights.

The distance between two images in ``[-1, 1]``: both are shifted and scaled as the backbone was trained, the
activations after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are unit-normalised along channels, and
the squared differences are weighted per channel, averaged over pixels and summed over the five layers.
Without linear weights every channel weighs 1 (the paper's baseline of plain deep-feature distance).
"""

from __future__ import annotations

import torch
from torch import nn

# VGG16 convolution widths, "M" a 2x2 max pool; the module indices match torchvision's ``vgg16().features``.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 in ``features``
TAP_CHANNELS = (64, 128, 256, 512, 512)
# The input normalisation LPIPS uses for its backbones, for images in [-1, 1].
INPUT_SHIFT = (-0.030, -0.088, -0.188)
INPUT_SCALE = (0.458, 0.448, 0.450)


def vgg16_features() -> nn.Sequential:
    """The convolutional part of VGG16 (3x3 convs with ReLU, max pools), up to relu5_3, randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """Perceptual distance between image batches; frozen (no parameter trains), differentiable in the inputs.

    Attributes:
        features: VGG16 convolutional layers; load a VGG16 state dict's ``features.*`` tensors here.
        linear: five (C,) non-negative channel weights, one per tapped layer (ones until loaded).

    Shape:
        x, y (B, 3, H, W) in [-1, 1], H and W at least 16 -> (B,) distances (0 for identical images).

    Example:
        >>> metric = LPIPS()
        >>> x = torch.rand(2, 3, 32, 32) * 2 - 1
        >>> metric(x, x).abs().max().item() < 1e-6, bool((metric(x, x.flip(0)) > 0).all())
        (True, True)
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features()
        self.linear = nn.ParameterList(nn.Parameter(torch.ones(c), requires_grad=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def set_linear_weights(self, weights: list[torch.Tensor]) -> None:
        """Per-channel weights of the five layers, each of C values (any shape holding C, e.g. (1, C, 1, 1)).

        Raises:
            ValueError: wrong number of layers, wrong channel count, or a negative weight.
        """
        if len(weights) != len(TAP_CHANNELS):
            raise ValueError(f"LPIPS needs {len(TAP_CHANNELS)} linear weight tensors, got {len(weights)}")
        for index, (weight, channels) in enumerate(zip(weights, TAP_CHANNELS, strict=True)):
            if weight.numel() != channels:
                raise ValueError(f"LPIPS linear layer {index} needs {channels} weights, got {tuple(weight.shape)}")
            if (weight < 0).any():
                raise ValueError(f"LPIPS linear layer {index} has negative weights")
            self.linear[index].data.copy_(weight.reshape(channels).float())

    def tapped(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised activations of the five tapped layers."""
        x = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        out = []
        for index, layer in enumerate(self.features[: TAPS[-1] + 1]):
            x = layer(x)
            if index in TAPS:
                out.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS compares two (B, 3, H, W) batches of one shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        if min(x.shape[-2:]) < 16:
            raise ValueError(f"LPIPS needs images of at least 16x16 pixels, got {tuple(x.shape[-2:])}")
        return self.distance(self.tapped(x), self.tapped(y))

    def distance(self, x_taps: list[torch.Tensor], y_taps: list[torch.Tensor]) -> torch.Tensor:
        """The distance from :meth:`tapped` activations, so a fixed image's can be computed once and reused."""
        total = x_taps[0].new_zeros(x_taps[0].shape[0])
        for weight, fx, fy in zip(self.linear, x_taps, y_taps, strict=True):
            total = total + ((fx - fy).square() * weight.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
        return total
