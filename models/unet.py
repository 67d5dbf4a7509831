"""U-Net generator of pix2pix (Isola et al., 2017): an encoder-decoder with skip connections."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.layers import init_weights, norm_layer, uses_bias


@dataclass
class DeepFeatureCache:
    """Deep features kept between preview passes of :meth:`UNetGenerator.preview`.

    The innermost levels hold most of the weights but, on a small preview, only a few pixels: reading those
    weights dominates the pass. With a cache, the first level whose input is at most ``side`` pixels wide
    stores what its inner levels produced; passes with ``reuse`` on take that stored result instead of
    recomputing it (a stroke in progress barely changes these global features).

    Attributes:
        reuse: take stored deep features when there are some for this input size.
        side: levels with an input of at most this many pixels (height and width) count as deep.
    """

    reuse: bool = False
    side: int = 4
    stored: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)


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
        # Smallest input this level sees at the native size: its normalised down-sampled map is then >= 2x2.
        self.least_input = 2 if innermost else 4
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
        self.inner_index = None if submodule is None else layers.index(submodule)

    def forward(self, x: torch.Tensor, cache: DeepFeatureCache | None = None) -> torch.Tensor:
        if cache is not None:
            return self._forward_cached(x, cache)
        if self.outermost:
            return self.model(x)
        h, w = x.shape[-2:]
        least = self.least_input
        if h < least or w < least:
            # Only in coarse previews (input below the native size): the level runs on its input replicated
            # up to the smallest size it sees natively, and the result is averaged back. The copy is activated
            # in place like ``x`` on the full path, so its average is the skip.
            grown = F.interpolate(x, size=(max(h, least), max(w, least)), mode="nearest")
            inner = self.model(grown)
            return torch.cat([F.adaptive_avg_pool2d(grown, (h, w)), F.adaptive_avg_pool2d(inner, (h, w))], dim=1)
        return torch.cat([x, self.model(x)], dim=1)

    def _forward_cached(self, x: torch.Tensor, cache: DeepFeatureCache) -> torch.Tensor:
        """:meth:`forward` in a preview pass that keeps (or reuses) the deep features in ``cache``."""
        if not self.outermost and max(x.shape[-2:]) <= cache.side:
            key = tuple(x.shape)
            if cache.reuse and key in cache.stored:
                # The skip is the input activated as the level's first layer would (in place) do.
                return torch.cat([F.leaky_relu(x, 0.2), cache.stored[key]], dim=1)
            out = self.forward(x)
            cache.stored = {key: out[:, x.shape[1]:]}
            return out
        i = self.inner_index
        assert i is not None, "the innermost level is always deep"
        inner = self.model[i](self.model[:i](x), cache)
        out = self.model[i + 1:](inner)
        return out if self.outermost else torch.cat([x, out], dim=1)


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

    def preview(self, x: torch.Tensor, cache: DeepFeatureCache | None = None) -> torch.Tensor:
        """A coarse pass for live previews: H and W may be multiples of ``stride // 4`` (down to a quarter of the
        native size). The innermost levels, whose maps would shrink below what they see natively, run on
        their input replicated up to that size and average their output back, so the weights apply unchanged;
        at multiples of ``stride`` this equals ``forward``. A ``cache`` keeps the deep features for the next
        preview (see :class:`DeepFeatureCache`).

        Example:
            >>> net = UNetGenerator(3, 3, depth=8, ngf=8).eval()
            >>> net.preview(torch.zeros(1, 3, 64, 128)).shape
            torch.Size([1, 3, 64, 128])
        """
        multiple = self.stride // 4
        h, w = x.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"a U-Net of depth {self.depth} previews H and W divisible by {multiple}, got {h}x{w}")
        return self.model(x, cache)
