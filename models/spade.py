"""SPADE / GauGAN networks and losses (Park et al., 2019, "Semantic Image Synthesis with
Spatially-Adaptive Normalization").

The generator turns a label map (one-hot classes, or any float map) into an image. Every
normalisation layer re-injects the label map: activations are normalised without learned
parameters, then scaled and shifted by ``gamma`` and ``beta`` maps predicted from the labels.
An optional encoder gives a style code ``z`` (VAE-style) for multi-modal synthesis.

Training as in the paper: hinge GAN loss (use :mod:`models.losses` with ``mode="hinge"`` through
:func:`multiscale_discriminator_loss` / :func:`multiscale_generator_loss`), discriminator
feature matching (:func:`feature_matching_loss`), VGG perceptual loss (:class:`VGGPerceptualLoss`)
and, with the encoder, a KL term (:func:`kl_divergence`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.layers import init_weights
from models.losses import discriminator_loss, generator_loss

PARAM_FREE_NORMS = ("instance", "batch")
UPSAMPLING_MODES = {"normal": 5, "more": 6, "most": 7}

# relu1_1 ... relu5_1 are outputs 1, 6, 11, 20 and 29 of torchvision's vgg19().features.
_VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
_VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def _spectral(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral norm when ``enabled``; initialise it first, the wrapper keeps the values."""
    return spectral_norm(module) if enabled else module


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``norm(x) * (1 + gamma(label)) + beta(label)``.

    Args:
        norm_channels: channels of the activations ``x`` being normalised.
        label_channels: channels of the label map (number of classes for one-hot maps).
        hidden: channels of the shared conv that reads the label map.
        param_free_norm: ``instance`` or ``batch``; either has no learned affine parameters.

    Shape:
        x: (B, norm_channels, H, W); label: (B, label_channels, H', W'), resized (nearest) to (H, W).
        Output: (B, norm_channels, H, W).
    """

    def __init__(
        self, norm_channels: int, label_channels: int, hidden: int = 128, param_free_norm: str = "instance"
    ) -> None:
        super().__init__()
        if param_free_norm == "instance":
            self.norm: nn.Module = nn.InstanceNorm2d(norm_channels, affine=False)
        elif param_free_norm == "batch":
            self.norm = nn.BatchNorm2d(norm_channels, affine=False)
        else:
            raise ValueError(
                f"unknown param_free_norm {param_free_norm!r}; choose one of {', '.join(PARAM_FREE_NORMS)}"
            )
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, norm_channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, norm_channels, 3, padding=1)
        init_weights(self)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = F.interpolate(label, size=x.shape[-2:], mode="nearest")
        features = self.shared(label)
        return self.norm(x) * (1 + self.gamma(features)) + self.beta(features)


class SPADEResBlock(nn.Module):
    """Residual block ``(SPADE -> LeakyReLU(0.2) -> 3x3 conv) x 2`` plus a shortcut.

    The shortcut is the identity when ``in_ch == out_ch``, otherwise learned: SPADE then a 1x1 conv
    without bias. The middle width is ``min(in_ch, out_ch)``.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        label_channels: channels of the label map.
        spectral: spectral norm on the block's convs (not on the small convs inside SPADE).
        hidden: channels of each SPADE's shared conv.
        param_free_norm: ``instance`` or ``batch``, passed to every SPADE.

    Shape:
        x: (B, in_ch, H, W); label: (B, label_channels, H', W'). Output: (B, out_ch, H, W).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        label_channels: int,
        spectral: bool = True,
        hidden: int = 128,
        param_free_norm: str = "instance",
    ) -> None:
        super().__init__()
        middle = min(in_ch, out_ch)
        self.norm_0 = SPADE(in_ch, label_channels, hidden, param_free_norm)
        self.conv_0 = nn.Conv2d(in_ch, middle, 3, padding=1)
        self.norm_1 = SPADE(middle, label_channels, hidden, param_free_norm)
        self.conv_1 = nn.Conv2d(middle, out_ch, 3, padding=1)
        self.learned_shortcut = in_ch != out_ch
        if self.learned_shortcut:
            self.norm_s = SPADE(in_ch, label_channels, hidden, param_free_norm)
            self.conv_s = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        init_weights(self)
        self.conv_0 = _spectral(self.conv_0, spectral)
        self.conv_1 = _spectral(self.conv_1, spectral)
        if self.learned_shortcut:
            self.conv_s = _spectral(self.conv_s, spectral)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, label)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, label), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, label), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """GauGAN generator: a stack of SPADE residual blocks with nearest 2x upsampling in between.

    It starts at ``(H / 2^n, W / 2^n)`` from the label map resized (nearest) there and a 3x3 conv,
    or, with ``use_encoder``, from a style code ``z`` through a linear layer. Blocks then run at
    widths ``16, 16, 16, 8, 4, 2, 1`` times ``ngf`` (plus a last ``ngf // 2`` block for ``most``),
    upsampling ``n`` times in all, and a LeakyReLU + 3x3 conv + tanh gives the image.

    Args:
        label_channels: channels of the label map.
        out_channels: image channels.
        ngf: width of the last full block; the first blocks use ``16 * ngf``.
        size: output (H, W); each side must be divisible by ``2^n``, and not both equal to it.
        num_upsampling_layers: ``normal`` (n=5), ``more`` (6) or ``most`` (7), as in the paper.
        use_encoder: start from a style code ``z`` instead of the downsampled label map.
        z_dim: length of ``z``.
        spectral: spectral norm on the residual blocks' convs.
        hidden: channels of each SPADE's shared conv.
        param_free_norm: ``instance`` or ``batch``.

    Shape:
        label: (B, label_channels, H', W'), any size (resized per layer); z: (B, z_dim).
        Output: (B, out_channels, H, W) in [-1, 1].
    """

    def __init__(
        self,
        label_channels: int,
        out_channels: int = 3,
        ngf: int = 64,
        size: tuple[int, int] = (256, 256),
        num_upsampling_layers: str = "normal",
        use_encoder: bool = False,
        z_dim: int = 256,
        spectral: bool = True,
        hidden: int = 128,
        param_free_norm: str = "instance",
    ) -> None:
        super().__init__()
        if num_upsampling_layers not in UPSAMPLING_MODES:
            raise ValueError(
                f"unknown num_upsampling_layers {num_upsampling_layers!r}; "
                f"choose one of {', '.join(UPSAMPLING_MODES)}"
            )
        n = UPSAMPLING_MODES[num_upsampling_layers]
        self.num_upsampling_layers, self.num_upsamplings = num_upsampling_layers, n
        self.size = (size[0], size[1])
        self.base_size = self._base_for(size)
        if self.base_size == (1, 1):  # a 1x1 starting map cannot be normalised per instance
            raise ValueError(
                f"size {tuple(size)} would start from a 1x1 map; use at least {2**n}x{2**(n + 1)} "
                f"for num_upsampling_layers={num_upsampling_layers!r}"
            )
        self.use_encoder = use_encoder
        self.z_dim = z_dim

        top = 16 * ngf
        if use_encoder:
            self.head: nn.Module = nn.Linear(z_dim, top * self.base_size[0] * self.base_size[1])
        else:
            self.head = nn.Conv2d(label_channels, top, 3, padding=1)
        # (in, out, upsample before the block); "more"/"most" add an upsampling between the middle blocks.
        plan = [(16, 16, False), (16, 16, True), (16, 16, n >= 6), (16, 8, True), (8, 4, True), (4, 2, True),
                (2, 1, True)]
        widths = [(ngf * i, ngf * o, up) for i, o, up in plan]
        if n == 7:
            widths.append((ngf, max(ngf // 2, 1), True))
        self.upsample_before = [up for _, _, up in widths]
        self.blocks = nn.ModuleList(
            SPADEResBlock(i, o, label_channels, spectral, hidden, param_free_norm) for i, o, _ in widths
        )
        self.to_image = nn.Conv2d(widths[-1][1], out_channels, 3, padding=1)
        init_weights(self.head)
        init_weights(self.to_image)

    def forward(
        self, label: torch.Tensor, z: torch.Tensor | None = None, generator: torch.Generator | None = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Synthesise an image.

        Args:
            label: label map (B, label_channels, H', W').
            z: style code (B, z_dim); only with ``use_encoder``. Sampled from N(0, I) when None.
            generator: random source for that sampling.
            size: output (H, W) when not the native ``self.size``, e.g. a coarse preview; each side a multiple
                of ``2^n``. The starting map is then that size over ``2^n`` (the code's map is area-resized).
        """
        base = self.base_size if size is None else self._base_for(size)
        if self.use_encoder:
            if z is None:
                z = torch.randn(label.shape[0], self.z_dim, generator=generator, device=label.device,
                                dtype=label.dtype)
            x = self.head(z).view(z.shape[0], -1, *self.base_size)
            if base != self.base_size:
                x = F.adaptive_avg_pool2d(x, base)
        else:
            if z is not None:
                raise ValueError("z was given but this generator was built with use_encoder=False")
            x = self.head(F.interpolate(label, size=base, mode="nearest"))
        for block, up in zip(self.blocks, self.upsample_before, strict=True):
            if up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, label)
        return torch.tanh(self.to_image(F.leaky_relu(x, 0.2)))

    def _base_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """The starting map's size for an output of ``size``, which must be a multiple of ``2^n``."""
        n = self.num_upsamplings
        if size[0] <= 0 or size[1] <= 0 or size[0] % 2**n or size[1] % 2**n:
            raise ValueError(f"size {tuple(size)} must be positive and divisible by 2^{n} = {2**n} "
                             f"for num_upsampling_layers={self.num_upsampling_layers!r}")
        return size[0] // 2**n, size[1] // 2**n


class ConvEncoder(nn.Module):
    """Style encoder: image -> (mu, logvar) of a Gaussian over ``z``.

    As in the paper the image is first resized (bilinear) to ``input_size`` square, so any input
    size works; stride-2 3x3 convs with instance norm then bring it to 4x4, and two linear heads
    read ``mu`` and ``logvar``. Widths are ``ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...``.

    Args:
        in_channels: image channels.
        ngf: width of the first conv.
        z_dim: length of the code.
        input_size: side the input is resized to; a power of two >= 8 (paper: 256, six convs).
        spectral: spectral norm on the convs.

    Shape:
        (B, in_channels, H, W) -> mu (B, z_dim), logvar (B, z_dim).
    """

    def __init__(
        self, in_channels: int = 3, ngf: int = 64, z_dim: int = 256, input_size: int = 256, spectral: bool = True
    ) -> None:
        super().__init__()
        if input_size < 8 or input_size & (input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 8, got {input_size}")
        self.input_size = input_size
        n_convs = int(math.log2(input_size // 4))
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(n_convs):
            width = ngf * min(2**i, 8)
            conv = nn.Conv2d(channels, width, 3, stride=2, padding=1)
            init_weights(conv)
            if i > 0:
                layers.append(nn.LeakyReLU(0.2))
            layers += [_spectral(conv, spectral), nn.InstanceNorm2d(width, affine=False)]
            channels = width
        self.convs = nn.Sequential(*layers)
        self.mu = nn.Linear(channels * 16, z_dim)
        self.logvar = nn.Linear(channels * 16, z_dim)
        init_weights(self.mu)
        init_weights(self.logvar)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if image.shape[-2:] != (self.input_size, self.input_size):
            image = F.interpolate(image, size=(self.input_size, self.input_size), mode="bilinear",
                                  align_corners=False)
        features = F.leaky_relu(self.convs(image), 0.2).flatten(1)
        return self.mu(features), self.logvar(features)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``, differentiable in mu and logvar."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, averaged over the batch.

    Exactly ``-0.5 * sum_j(1 + logvar_j - mu_j^2 - exp(logvar_j))`` summed over every non-batch
    element of one sample, then the mean of those per-sample sums over dimension 0. (The
    reference SPADE code sums over the batch too; this is that divided by the batch size.)

    Args:
        mu: means, (B, z_dim).
        logvar: log variances, same shape.

    Returns:
        A scalar tensor.

    Example:
        >>> kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)).item()
        0.0
    """
    per_sample = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(dim=1)
    return per_sample.mean()


class _ScaleDiscriminator(nn.Module):
    """One scale of :class:`MultiscaleDiscriminator`; returns every block's output, logits last."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, spectral: bool) -> None:
        super().__init__()
        convs: list[nn.Conv2d] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2)]
        width = ndf
        for n in range(1, n_layers):
            prev, width = width, ndf * min(2**n, 8)
            convs.append(nn.Conv2d(prev, width, 4, stride=1 if n == n_layers - 1 else 2, padding=2))
        final = nn.Conv2d(width, 1, 4, stride=1, padding=2)
        for conv in [*convs, final]:
            init_weights(conv)
        blocks: list[nn.Module] = [nn.Sequential(_spectral(convs[0], spectral), nn.LeakyReLU(0.2))]
        for conv in convs[1:]:
            norm = nn.InstanceNorm2d(conv.out_channels, affine=False)
            blocks.append(nn.Sequential(_spectral(conv, spectral), norm, nn.LeakyReLU(0.2)))
        blocks.append(_spectral(final, spectral))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` PatchGAN discriminators, scale ``k`` seeing the input average-pooled ``k`` times.

    Each scale has ``n_layers`` 4x4 conv blocks (the first without norm, the next with instance
    norm, all but the last block stride 2) and a final 4x4 conv to one logit channel. Pooling is
    3x3, stride 2, padding 1, ``count_include_pad=False``. Feed it ``cat([label, image], 1)``.

    Args:
        in_channels: input channels (label channels + image channels).
        ndf: width of the first conv; later ones double up to ``8 * ndf``.
        n_layers: conv blocks before the final conv (paper: 4).
        num_scales: number of discriminators (paper: 2).
        spectral: spectral norm on every conv.

    Shape:
        (B, in_channels, H, W) -> ``num_scales`` lists of ``n_layers + 1`` tensors; the last in
        each list is the (B, 1, H_k', W_k') logit map, the others are intermediate features.
    """

    def __init__(
        self, in_channels: int, ndf: int = 64, n_layers: int = 4, num_scales: int = 2, spectral: bool = True
    ) -> None:
        super().__init__()
        if n_layers < 1 or num_scales < 1:
            raise ValueError(f"n_layers and num_scales must be >= 1, got {n_layers} and {num_scales}")
        self.scales = nn.ModuleList(
            _ScaleDiscriminator(in_channels, ndf, n_layers, spectral) for _ in range(num_scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for k, scale in enumerate(self.scales):
            if k > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """Discriminator feature matching: mean over scales of ``sum_layers L1(fake, real.detach())``.

    The last entry of each scale's list (the logits) is left out; each L1 is a mean over elements.

    Args:
        real_features: :class:`MultiscaleDiscriminator` output on real images.
        fake_features: its output on generated images.

    Returns:
        A scalar tensor; gradients reach only the fake features.
    """
    if len(real_features) != len(fake_features):
        raise ValueError(f"got {len(real_features)} real scales and {len(fake_features)} fake scales")
    per_scale = []
    for real, fake in zip(real_features, fake_features, strict=True):
        layers = [F.l1_loss(f, r.detach()) for r, f in zip(real[:-1], fake[:-1], strict=True)]
        per_scale.append(torch.stack(layers).sum() if layers else fake[-1].new_zeros(()))
    return torch.stack(per_scale).mean()


def multiscale_discriminator_loss(
    real_outputs: list[list[torch.Tensor]], fake_outputs: list[list[torch.Tensor]], mode: str = "hinge"
) -> torch.Tensor:
    """:func:`models.losses.discriminator_loss` on each scale's logits (last entry), averaged over scales."""
    losses = [discriminator_loss(r[-1], f[-1], mode) for r, f in zip(real_outputs, fake_outputs, strict=True)]
    return torch.stack(losses).mean()


def multiscale_generator_loss(fake_outputs: list[list[torch.Tensor]], mode: str = "hinge") -> torch.Tensor:
    """:func:`models.losses.generator_loss` on each scale's logits (last entry), averaged over scales."""
    return torch.stack([generator_loss(f[-1], mode) for f in fake_outputs]).mean()


class VGGPerceptualLoss(nn.Module):
    """VGG19 perceptual loss: ``sum_i w_i * L1(vgg_i(x), vgg_i(y).detach())`` on relu1_1 ... relu5_1.

    Weights ``w`` are 1/32, 1/16, 1/8, 1/4, 1. The network is torchvision's ``vgg19(weights=None)``
    with its conv weights read from a local file; nothing is ever downloaded. The file may hold a
    whole ``vgg19`` state dict (``features.N.weight`` keys) or only ``vgg19().features``'s
    (``N.weight`` keys); layers past relu5_1 and the classifier are ignored. VGG is frozen.

    Args:
        weights_path: local ``.pth`` state dict, read with ``torch.load(weights_only=True)``.
        normalize: map inputs from [-1, 1] to ImageNet mean/std before VGG, as its weights expect.

    Shape:
        x, y: (B, 3, H, W) in [-1, 1] -> scalar.

    Raises:
        FileNotFoundError: ``weights_path`` does not exist.
    """

    def __init__(self, weights_path: str | Path, normalize: bool = True) -> None:
        super().__init__()
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG19 weights not found: {path}")
        import torchvision  # only this loss needs it, and it is slow to import

        state = torch.load(path, map_location="cpu", weights_only=True)
        if any(key.startswith("features.") for key in state):
            state = {key.removeprefix("features."): v for key, v in state.items() if key.startswith("features.")}
        keep = _VGG_SLICES[-1][1]
        # Drop the layers past relu5_1; anything unexpected stays so the strict load names it.
        state = {k: v for k, v in state.items() if not (k.split(".")[0].isdigit() and int(k.split(".")[0]) >= keep)}
        # Built on the meta device (no random init of ~140M unused parameters), then filled from the file.
        with torch.device("meta"):
            features = torchvision.models.vgg19(weights=None).features[:keep]
        features.load_state_dict(state, strict=True, assign=True)
        features.requires_grad_(False)
        self.slices = nn.ModuleList(features[a:b] for a, b in _VGG_SLICES)
        self.weights = _VGG_WEIGHTS
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2 - self.mean) / self.std if self.normalize else x

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._prepare(x), self._prepare(y)
        loss = x.new_zeros(())
        for weight, vgg_slice in zip(self.weights, self.slices, strict=True):
            x, y = vgg_slice(x), vgg_slice(y)
            loss = loss + weight * F.l1_loss(x, y.detach())
        return loss
