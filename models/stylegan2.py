"""StyleGAN2 generator and discriminator in plain PyTorch (no custom CUDA ops).

Follows Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020): equalized learning
rate everywhere, weight (de)modulation instead of AdaIN, a skip generator, a residual discriminator with a
minibatch standard deviation layer, and the non-saturating logistic loss with R1 and path length
regularisation. Resampling uses the separable low-pass filter ``[1, 3, 3, 1]`` applied as a depthwise
``F.conv2d``.

Images are in roughly ``[-1, 1]``; the generator output has no final activation (as in the paper).

Layer indexing: for a resolution ``R`` there are ``num_ws = 2 * log2(R) - 2`` style vectors. Synthesis conv
layer ``i`` (``i < num_ws - 1``) reads ``ws[:, i]``; the ToRGB layer of each block reads the same ``ws`` index
as the first conv of the next block (the last ToRGB reads ``ws[:, -1]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.losses import discriminator_loss, generator_loss

NOISE_MODES = ("random", "const", "none")
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


# ----------------------------------------------------------------------------------------------------------
# Low-level helpers


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) scaled by sqrt(2) so that unit-variance inputs keep roughly unit variance."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def fir_kernel(taps: tuple[float, ...] = FIR_TAPS, gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D low-pass kernel ``outer(taps, taps)`` normalised to sum to ``gain``.

    Shape:
        (K, K) with ``K = len(taps)``.
    """
    t = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(t, t)
    return k * (gain / k.sum())


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Filter every channel of ``x`` with ``kernel`` after zero padding ``pad = (before, after)`` per side.

    Shape:
        (B, C, H, W) -> (B, C, H + sum(pad) - K + 1, W + sum(pad) - K + 1).
    """
    channels = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # The FIR kernels here are symmetric, so correlation (conv2d) equals convolution.
    weight = kernel.to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=channels)


def upsample2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Upsample by 2: insert zeros between pixels, then low-pass with ``kernel`` (whose sum should be 4).

    Shape:
        (B, C, H, W) -> (B, C, 2H, 2W).
    """
    b, c, h, w = x.shape
    x = x.reshape(b, c, h, 1, w, 1)
    x = F.pad(x, [0, 1, 0, 0, 0, 1]).reshape(b, c, 2 * h, 2 * w)
    taps = kernel.shape[-1]
    return blur(x, kernel, ((taps + 1) // 2, (taps - 2) // 2))


# ----------------------------------------------------------------------------------------------------------
# Equalized learning rate layers


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate.

    The weight is stored as N(0, 1) / ``lr_mul`` and multiplied at runtime by ``lr_mul / sqrt(in_features)``;
    the bias is stored as ``bias_init / lr_mul`` and multiplied by ``lr_mul``, so Adam's per-parameter step
    sizes are equal across layers and ``lr_mul`` slows this layer down.

    Args:
        in_features: input size.
        out_features: output size.
        lr_mul: learning-rate multiplier for this layer (0.01 in the mapping network).
        bias_init: initial value of the effective bias (1 for style affines, so styles start near 1).
        activation: ``None`` (linear) or ``"lrelu"`` (leaky ReLU with gain sqrt(2)).
        bias: whether to learn a bias.

    Shape:
        (B, in_features) -> (B, out_features).
    """

    def __init__(
        self, in_features: int, out_features: int, lr_mul: float = 1.0, bias_init: float = 0.0,
        activation: str | None = None, bias: bool = True,
    ) -> None:
        super().__init__()
        if activation not in (None, "lrelu"):
            raise ValueError(f"unknown activation {activation!r}; choose None or 'lrelu'")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied, ``stored weight * lr_mul / sqrt(in_features)``."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.effective_weight(), bias)
        return lrelu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f}, {out_f}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """2-D convolution with equalized learning rate, optional low-pass + stride-2 downsampling.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size (odd).
        bias: whether to learn a bias (initialised to 0).
        activation: ``None`` or ``"lrelu"``.
        down: halve the resolution: blur with the ``[1, 3, 3, 1]`` filter, then convolve with stride 2.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H, W), or (H / 2, W / 2) with ``down``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
        activation: str | None = None, down: bool = False,
    ) -> None:
        super().__init__()
        if activation not in (None, "lrelu"):
            raise ValueError(f"unknown activation {activation!r}; choose None or 'lrelu'")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation
        self.down = down
        self.kernel_size = kernel_size
        if down:
            self.register_buffer("fir", fir_kernel(), persistent=False)
            # Blur keeps the size + 1 (3x3) or - 1 (1x1); the stride-2 conv without padding then halves it.
            p = (len(FIR_TAPS) - 2) + (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        if self.down:
            x = blur(x, self.fir, self.blur_pad)
            x = F.conv2d(x, weight, self.bias, stride=2)
        else:
            x = F.conv2d(x, weight, self.bias, padding=self.kernel_size // 2)
        return lrelu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, down={self.down}, activation={self.activation}"


# ----------------------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(nn.Module):
    """Maps latents ``z`` to intermediate latents ``w`` with an MLP, and tracks their running mean.

    Args:
        z_dim: size of ``z``.
        w_dim: size of ``w`` (also the hidden width).
        num_layers: fully connected layers, each followed by leaky ReLU.
        lr_mul: learning-rate multiplier of every layer (0.01 in the paper).
        w_avg_beta: decay of the running mean ``w_avg`` used for truncation.

    Shape:
        (B, z_dim) -> (B, w_dim).
    """

    def __init__(
        self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8, lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta
        dims = [z_dim] + [w_dim] * num_layers
        self.net = nn.Sequential(
            *(EqualLinear(a, b, lr_mul=lr_mul, activation="lrelu") for a, b in zip(dims[:-1], dims[1:], strict=True))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, update_w_avg: bool = False) -> torch.Tensor:
        """Map ``z`` to ``w``; with ``update_w_avg`` move ``w_avg`` toward the batch mean (use while training)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        w = self.net(z)
        if update_w_avg:
            with torch.no_grad():
                # Under autocast w may be bf16/fp16 while the running average stays fp32.
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return w

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """Truncation trick: ``w_avg + psi * (w - w_avg)``.

        Args:
            w: latents, (B, w_dim) or (B, num_ws, w_dim).
            psi: 1 keeps ``w``; 0 returns ``w_avg``.
            cutoff: with 3-D ``w``, truncate only layers ``< cutoff`` (all layers when ``None``).

        Returns:
            A new tensor of the same shape as ``w``.
        """
        if psi == 1:
            return w
        truncated = self.w_avg.to(w.dtype).lerp(w, psi)
        if cutoff is None or w.ndim == 2:
            return truncated
        layer = torch.arange(w.shape[1], device=w.device)[None, :, None]
        return torch.where(layer < cutoff, truncated, w)


# ----------------------------------------------------------------------------------------------------------
# Synthesis network


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style computed from ``w`` (StyleGAN2 Fig. 2d).

    The style ``s = A(w)`` (an :class:`EqualLinear` with bias 1) scales the input channels of the weight; with
    ``demodulate`` each output channel's weight is then divided by its L2 norm, so unit-variance inputs give
    roughly unit-variance outputs. A single sample gets its own weights in one convolution; a batch shares one
    convolution whose inputs are scaled by the styles and whose outputs are demodulated (equivalent).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size (odd).
        w_dim: size of ``w``.
        demodulate: normalise each output channel's modulated weight (off for ToRGB).
        up: double the resolution with a stride-2 transposed convolution followed by the low-pass filter.

    Shape:
        x (B, in_channels, H, W), w (B, w_dim) -> (B, out_channels, H, W), or (2H, 2W) with ``up``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True,
        up: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up = demodulate, up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        if up:
            self.register_buffer("fir", fir_kernel(gain=4.0), persistent=False)
            p = (len(FIR_TAPS) - 2) - (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2 + 1, p // 2 + 1)

    def modulated_weight(self, styles: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, out, in, k, k) for styles (B, in)."""
        weight = self.weight[None] * self.weight_gain * styles.float()[:, None, :, None, None]  # fp32 (see above)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if x.shape[0] == 1:
            return self._fused(x, styles)
        # Batches: scale the activations instead of the weights, one shared convolution, then demodulate with
        # coefficients from a small matmul. The same result; G forward+backward about a fifth faster on a CPU.
        weight = self.weight * self.weight_gain
        x = self._conv(x * styles[:, :, None, None], weight.transpose(0, 1) if self.up else weight, groups=1)
        if self.demodulate:
            x = x * demodulation_coefficients(styles, weight).to(x.dtype)[:, :, None, None]
        return x

    def _fused(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Per-sample modulated weights applied as one grouped convolution (fastest for a single sample)."""
        batch, _, height, width = x.shape
        weight = self.modulated_weight(styles)
        k = self.kernel_size
        if self.up:  # conv_transpose2d wants (in, out / groups, k, k)
            weight = weight.transpose(1, 2).reshape(batch * self.in_channels, self.out_channels, k, k)
        else:
            weight = weight.reshape(batch * self.out_channels, self.in_channels, k, k)
        x = self._conv(x.reshape(1, batch * self.in_channels, height, width), weight, groups=batch)
        return x.reshape(batch, self.out_channels, *x.shape[-2:])

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
        """The plain 3x3 (or 1x1) convolution, or with ``up`` the stride-2 transposed one (``weight`` laid out
        as conv_transpose2d wants it) and the low-pass."""
        if not self.up:
            return F.conv2d(x, weight, padding=self.kernel_size // 2, groups=groups)
        x = F.conv_transpose2d(x, weight, stride=2, groups=groups)
        return blur(x, self.fir, self.blur_pad)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"demodulate={self.demodulate}, up={self.up}"
        )


def demodulation_coefficients(styles: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(sum over in, k of (w * s)^2 + 1e-8)`` per sample and output channel, always in fp32.

    Under mixed precision the sum of squares would otherwise run as a bf16/fp16 matmul: bf16 keeps too few bits
    for a normaliser every layer multiplies by, fp16 overflows on large styles.

    Shape:
        styles (B, in), weight (out, in, k, k) -> (B, out) float32.
    """
    with torch.autocast(device_type=styles.device.type, enabled=False):
        return torch.rsqrt(styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t() + 1e-8)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv, then per-pixel noise times a learned strength, bias and leaky ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        w_dim: size of ``w``.
        resolution: output resolution (size of the fixed ``noise_const`` buffer).
        up: double the resolution in the conv.

    Shape:
        x (B, in_channels, H, W), w (B, w_dim) -> (B, out_channels, resolution, resolution).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.resolution = resolution
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"unknown noise_mode {noise_mode!r}; choose one of {', '.join(NOISE_MODES)}")
        return lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels (no demodulation) plus bias.

    Shape:
        x (B, in_channels, H, W), w (B, w_dim) -> (B, img_channels, H, W).
    """

    def __init__(self, in_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def _check_resolution(img_resolution: int) -> int:
    if img_resolution not in (32, 64, 128, 256):
        raise ValueError(f"img_resolution must be a power of two in 32..256, got {img_resolution}")
    return int(math.log2(img_resolution))


def _channels(resolution: int, channel_base: int, channel_max: int) -> int:
    return max(1, min(channel_base // resolution, channel_max))


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (up-)conv, conv, ToRGB; the incoming RGB is upsampled and added.

    The 4x4 block (``in_channels=0``) starts from a learned constant and has a single conv.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.convs = nn.ModuleList([SynthesisLayer(out_channels, out_channels, w_dim, resolution)])
        else:
            self.const = None
            self.convs = nn.ModuleList([
                SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True),
                SynthesisLayer(out_channels, out_channels, w_dim, resolution),
            ])
            self.register_buffer("fir", fir_kernel(gain=4.0), persistent=False)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)

    @property
    def num_conv(self) -> int:
        return len(self.convs)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws`` (B, num_conv + 1, w_dim): one per conv, the last for ToRGB."""
        if self.const is not None:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise_mode)
        rgb = self.torgb(x, ws[:, -1])
        img = rgb if img is None else upsample2d(img, self.fir) + rgb
        return x, img


class SynthesisNetwork(nn.Module):
    """Skip-architecture synthesis network: constant 4x4 input, one block per resolution up to the output.

    Args:
        w_dim: size of each ``w``.
        img_resolution: output resolution, a power of two in 32..256.
        channel_base: channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: upper bound on channels.
        img_channels: output image channels.

    Attributes:
        num_ws: number of style vectors consumed, ``2 * log2(img_resolution) - 2``.
        num_layers: number of modulated 3x3 conv layers, ``num_ws - 1``; layer ``i`` reads ``ws[:, i]``.

    Shape:
        ws (B, num_ws, w_dim) -> (B, img_channels, img_resolution, img_resolution).
    """

    def __init__(
        self, w_dim: int, img_resolution: int, channel_base: int = 16384, channel_max: int = 512,
        img_channels: int = 3,
    ) -> None:
        super().__init__()
        log2_res = _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        resolutions = [2**i for i in range(2, log2_res + 1)]
        blocks, in_ch = [], 0
        for res in resolutions:
            out_ch = _channels(res, channel_base, channel_max)
            blocks.append(SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.num_layers = sum(b.num_conv for b in self.blocks)
        self.num_ws = self.num_layers + 1

    def layers(self) -> list[SynthesisLayer]:
        """The modulated conv layers in ``ws`` order (layer ``i`` reads ``ws[:, i]``)."""
        return [conv for block in self.blocks for conv in block.convs]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; choose one of {', '.join(NOISE_MODES)}")
        x = img = None
        start = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, start : start + block.num_conv + 1], noise_mode)
            start += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: :class:`MappingNetwork` then :class:`SynthesisNetwork`.

    Args:
        z_dim: size of the input latent ``z``.
        w_dim: size of the intermediate latent ``w``.
        img_resolution: output resolution, a power of two in 32..256.
        mapping_layers: depth of the mapping MLP.
        channel_base: channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: upper bound on channels.
        img_channels: output image channels.

    A CPU-trainable 64x64 setting: ``Generator(z_dim=256, w_dim=256, img_resolution=64, mapping_layers=8,
    channel_base=4096, channel_max=256)`` has 4,760,792 parameters (mapping 526,336; synthesis 4,234,456);
    with ``channel_base=8192`` 5,962,392. The full-size ``Generator(512, 512, 256)`` has 24,767,458.

    Shape:
        z (B, z_dim) -> (B, img_channels, img_resolution, img_resolution).
    """

    def __init__(
        self, z_dim: int = 512, w_dim: int = 512, img_resolution: int = 256, mapping_layers: int = 8,
        channel_base: int = 16384, channel_max: int = 512, img_channels: int = 3,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.img_resolution = z_dim, w_dim, img_resolution
        self.synthesis_network = SynthesisNetwork(w_dim, img_resolution, channel_base, channel_max, img_channels)
        self.mapping_network = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.num_ws = self.synthesis_network.num_ws

    def mapping(
        self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None, update_w_avg: bool = False
    ) -> torch.Tensor:
        """Map ``z`` (B, z_dim) to ``ws`` (B, num_ws, w_dim), truncated with ``psi`` on layers ``< cutoff``."""
        w = self.mapping_network(z, update_w_avg=update_w_avg)
        ws = w[:, None].repeat(1, self.num_ws, 1)  # a real copy, safe to edit in place
        return self.mapping_network.truncate(ws, psi, cutoff)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """Render ``ws`` (B, num_ws, w_dim) to images."""
        return self.synthesis_network(ws, noise_mode)

    def forward(
        self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "random"
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, psi, cutoff), noise_mode)

    @property
    def w_avg(self) -> torch.Tensor:
        """Running mean of ``w`` (w_dim,)."""
        return self.mapping_network.w_avg

    @staticmethod
    def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, layer_start: int, layer_end: int) -> torch.Tensor:
        """Style mixing: ``ws2`` for layers in ``[layer_start, layer_end)``, ``ws1`` elsewhere.

        Shape:
            ws1, ws2 (B, num_ws, w_dim) -> (B, num_ws, w_dim); a new tensor, inputs untouched.
        """
        if ws1.shape != ws2.shape:
            raise ValueError(f"ws1 and ws2 differ in shape: {tuple(ws1.shape)} vs {tuple(ws2.shape)}")
        layer = torch.arange(ws1.shape[1], device=ws1.device)[None, :, None]
        return torch.where((layer >= layer_start) & (layer < layer_end), ws2, ws1)

    def modulation_weights(self, layer_range: tuple[int, int] | None = None) -> torch.Tensor:
        """Effective weights of the style affines of synthesis conv layers, stacked for SeFa.

        SeFa (Shen & Zhou, 2021) takes the eigenvectors of ``A^T A`` with ``A`` these weights.

        Args:
            layer_range: ``(start, end)`` conv layer indices (= ``ws`` indices), all layers when ``None``.

        Returns:
            (sum of in_channels over the chosen layers, w_dim), detached.
        """
        layers = self.synthesis_network.layers()
        start, end = layer_range if layer_range is not None else (0, len(layers))
        if not 0 <= start < end <= len(layers):
            raise ValueError(f"layer_range must satisfy 0 <= start < end <= {len(layers)}, got {layer_range}")
        return torch.cat([layer.conv.affine.effective_weight().detach() for layer in layers[start:end]])


# ----------------------------------------------------------------------------------------------------------
# Discriminator


class MinibatchStdDev(nn.Module):
    """Appends the standard deviation across groups of samples as extra feature maps.

    Samples are split into groups of ``group_size`` (the largest divisor of the batch that is not larger);
    each group's per-feature std, averaged over channels and pixels, is broadcast to ``num_channels`` maps.

    Shape:
        (B, C, H, W) -> (B, C + num_channels, H, W).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = self.num_channels
        if c % f:
            raise ValueError(f"channels ({c}) must be divisible by mbstd num_channels ({f})")
        g = next(n for n in range(min(self.group_size, b), 0, -1) if b % n == 0)
        y = x.reshape(g, b // g, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (B / G, F)
        y = y.reshape(1, b // g, f, 1, 1).expand(g, -1, -1, h, w).reshape(b, f, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, summed * 1/sqrt(2).

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H / 2, W / 2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation="lrelu", down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator.

    fromRGB (1x1) at full resolution, one :class:`DiscriminatorBlock` per halving down to 4x4, then
    minibatch std, a 3x3 conv and two fully connected layers.

    Args:
        img_resolution: input resolution, a power of two in 32..256.
        channel_base: channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: upper bound on channels.
        img_channels: input image channels.
        mbstd_group: group size of the minibatch std layer.
        mbstd_channels: feature maps added by the minibatch std layer (0 disables it).

    A 64x64 setting with ``channel_base=4096, channel_max=256`` has 4,727,617 parameters
    (``channel_base=8192``: 5,854,593; full-size ``Discriminator(256)``: 24,001,089).

    Shape:
        (B, img_channels, img_resolution, img_resolution) -> (B, 1) logits.
    """

    def __init__(
        self, img_resolution: int = 256, channel_base: int = 16384, channel_max: int = 512, img_channels: int = 3,
        mbstd_group: int = 4, mbstd_channels: int = 1,
    ) -> None:
        super().__init__()
        log2_res = _check_resolution(img_resolution)
        self.img_resolution, self.img_channels = img_resolution, img_channels
        ch = [_channels(2**i, channel_base, channel_max) for i in range(log2_res, 1, -1)]  # full res ... 4x4
        self.from_rgb = EqualConv2d(img_channels, ch[0], 1, activation="lrelu")
        self.blocks = nn.Sequential(*(DiscriminatorBlock(a, b) for a, b in zip(ch[:-1], ch[1:], strict=True)))
        self.mbstd = MinibatchStdDev(mbstd_group, mbstd_channels) if mbstd_channels > 0 else nn.Identity()
        self.conv = EqualConv2d(ch[-1] + mbstd_channels, ch[-1], 3, activation="lrelu")
        self.fc = EqualLinear(ch[-1] * 4 * 4, ch[-1], activation="lrelu")
        self.out = EqualLinear(ch[-1], 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {tuple(img.shape)}")
        x = self.blocks(self.from_rgb(img))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


# ----------------------------------------------------------------------------------------------------------
# Losses and regularisers


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss ``softplus(fake) + softplus(-real)`` (batch means, summed)."""
    # losses.discriminator_loss averages the two halves; StyleGAN2 sums them (R1 gamma is tuned for that).
    return 2.0 * discriminator_loss(real_logits, fake_logits, "vanilla")


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``mean(softplus(-fake))``."""
    return generator_loss(fake_logits, "vanilla")


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 penalty: squared gradient norm of the logits w.r.t. real images, summed per sample, batch mean.

    Multiply by ``gamma / 2`` in the loss. The graph is kept so the penalty can be backpropagated.

    Args:
        real_logits: discriminator outputs on ``real_images``.
        real_images: the inputs, with ``requires_grad`` set before the discriminator call.

    Returns:
        Scalar tensor.
    """
    if not real_images.requires_grad:
        raise ValueError("real_images must have requires_grad=True before the discriminator is run on them")
    if not real_logits.requires_grad:  # e.g. a constant discriminator: the gradient is zero
        return real_images.new_zeros(())
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, allow_unused=True)
    if grad is None:
        return real_images.new_zeros(())
    return grad.square().flatten(1).sum(dim=1).mean()


def path_length_penalty(
    fake_images: torch.Tensor, ws: torch.Tensor, mean_path_length: float | torch.Tensor, decay: float = 0.01,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Path length regularisation: keeps ``|J_w^T y|`` constant for random image-space directions ``y``.

    Args:
        fake_images: images synthesised from ``ws``.
        ws: (B, num_ws, w_dim) latents with ``requires_grad``.
        mean_path_length: running mean of the path lengths (start at 0).
        decay: update rate of the running mean.
        generator: optional RNG for the random directions.

    Returns:
        ``(penalty, new_mean, path_lengths)``: scalar penalty ``mean((lengths - new_mean)^2)`` (with graph),
        the detached updated running mean, and the detached per-sample lengths (B,).
    """
    h, w = fake_images.shape[-2:]
    noise = torch.randn(
        fake_images.shape, device=fake_images.device, dtype=fake_images.dtype, generator=generator
    ) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((fake_images * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    mean = torch.as_tensor(mean_path_length, dtype=lengths.dtype, device=lengths.device)
    new_mean = (mean + decay * (lengths.detach().mean() - mean)).detach()
    penalty = (lengths - new_mean).square().mean()
    return penalty, new_mean, lengths.detach()
