"""StyleGAN2 (Karras et al., 2020) on any image folder: unconditional generation for latent editing.

The trainer follows the paper's recipe on top of :mod:`models.stylegan2`: non-saturating logistic loss, lazy R1
on reals every ``r1_interval`` steps, lazy path length regularisation every ``pl_interval`` steps, style mixing,
an exponential moving average of the generator (``G_ema``, the network inference uses) and DiffAugment
(Zhao et al., 2020) so small folders such as the 3433 emoji do not overfit the discriminator at once.

Layer ranges in this family are half-open ``(start, end)`` indices into ``ws`` (B, num_ws, w_dim).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch import nn

from engine.core.config import (
    DataConfig,
    TrainConfig,
    check,
    check_optimizer,
    check_positive,
    check_size_fields,
    replace,
    setting,
    with_size_fields,
)
from engine.core.errors import ConfigError, DatasetError, ImageError
from engine.core.family_spec import InferenceOption
from engine.core.imageio import list_images, read_image
from engine.core.registry import register_family
from engine.data.augment import to_minus_one_one
from engine.data.datasets import DecodedItems, EpochSampler, resize_rgb, split_folder
from engine.families.base import Family
from engine.infer.eval_batch import EvalBatch
from engine.infer.loading import LoadedNetwork
from engine.infer.mode import inference_mode
from engine.train.common import autocast, image_grid, make_adam, prepare_module
from engine.train.trainer import Trainer, set_requires_grad
from models.stylegan2 import (
    NOISE_MODES,
    Discriminator,
    Generator,
    d_logistic_loss,
    g_nonsaturating_loss,
    path_length_penalty,
    r1_penalty,
)

if TYPE_CHECKING:
    from engine.families.stylegan2.latent import LatentSession

RESOLUTIONS = (32, 64, 128, 256)
DIFFAUG_OPS = ("colour", "translation", "cutout")
SAMPLE_SEEDS = tuple(range(8))
SAMPLE_PSIS = (1.0, 0.7)


@dataclass(frozen=True)
class StyleGAN2Config:
    """Networks, regularisation and optimiser of StyleGAN2.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    resolution: int = setting(64, "image size (square, 32, 64, 128 or 256): the training --size, which sets "
                              "the networks' depth.", follows_size=True)
    z_dim: int = setting(512, "size of the input latent z.")
    w_dim: int = setting(512, "size of the intermediate latent w.")
    mapping_layers: int = setting(8, "depth of the mapping MLP.")
    mapping_lr_mul: float = setting(0.01, "learning-rate multiplier of the mapping network (0.01 in the "
                                    "paper).")
    channel_base: int = setting(16384, "channels at resolution r are min(channel_base / r, channel_max), in "
                                "both networks.")
    channel_max: int = setting(512, "the most channels a layer of either network has (see channel_base).")
    mbstd_group: int = setting(4, "group size of the discriminator's minibatch standard deviation layer.")
    r1_gamma: float = setting(1.0, "weight of the R1 penalty on real images (0 disables it).")
    r1_interval: int = setting(16, "apply R1 every this many steps (lazy regularisation, scaled by the "
                               "interval).")
    pl_weight: float = setting(0.0, "weight of path length regularisation (0 disables it, the default: steps "
                               "are about an eighth faster and small sets learn as well without, "
                               "docs/recipes.md; the paper uses 2).")
    pl_interval: int = setting(4, "apply path length regularisation every this many steps.")
    pl_batch_shrink: int = setting(2, "path length regularisation runs on batch_size / this many samples.")
    pl_decay: float = setting(0.01, "update rate of the running mean path length.")
    style_mixing_prob: float = setting(0.0, "probability that a training batch mixes two latents at a random "
                                       "layer (the paper uses 0.9; 0 by default, docs/recipes.md).")
    ema_kimg: float = setting(10.0, "half-life of the generator average G_ema in thousands of images.")
    ema_rampup: float = setting(0.05, "the half-life is at most this fraction of the images seen so far (0 "
                                "disables the ramp).")
    diffaug: str = setting("colour,translation,cutout", "comma-separated differentiable augmentations for D "
                           "inputs (colour, translation, cutout), or none.")
    lr_g: float = setting(0.0025, "Adam learning rate of the generator (StyleGAN2 uses 0.0025 for both "
                          "networks).")
    lr_d: float = setting(0.0025, "Adam learning rate of the discriminator.")
    betas: tuple[float, float] = setting((0.0, 0.99), "Adam betas (beta1,beta2) of both networks (StyleGAN2 "
                                         "uses 0,0.99).")

    def __post_init__(self) -> None:
        check(self.resolution in RESOLUTIONS, "resolution", self.resolution, "one of 32, 64, 128, 256")
        for name in ("z_dim", "w_dim", "mapping_layers", "mapping_lr_mul", "channel_base", "channel_max",
                     "mbstd_group", "r1_interval", "pl_interval", "pl_batch_shrink", "ema_kimg"):
            check_positive(name, getattr(self, name))
        for name in ("r1_gamma", "pl_weight", "ema_rampup"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check(0 <= self.pl_decay <= 1, "pl_decay", self.pl_decay, "a number in [0, 1]")
        check(0 <= self.style_mixing_prob <= 1, "style_mixing_prob", self.style_mixing_prob, "a number in [0, 1]")
        check_optimizer(self)
        unknown = [op for op in parse_diffaug(self.diffaug) if op not in DIFFAUG_OPS]
        check(not unknown, "diffaug", self.diffaug, "a comma-separated subset of " + ", ".join(DIFFAUG_OPS)
              + " (or none)")

    @property
    def augmentations(self) -> tuple[str, ...]:
        return parse_diffaug(self.diffaug)


def parse_diffaug(text: str) -> tuple[str, ...]:
    """``"colour,translation"`` -> ``("colour", "translation")``; ``color`` is accepted; ``none``/empty -> ()."""
    ops = [op.strip().lower() for op in text.split(",") if op.strip()]
    if ops in (["none"], ["off"]):
        return ()
    return tuple("colour" if op == "color" else op for op in ops)


# ----------------------------------------------------------------------------------------------------------
# DiffAugment: the same kind of random, differentiable transform on every image the discriminator sees


def diff_augment(x: torch.Tensor, ops: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Differentiable augmentation of a (B, C, H, W) batch in [-1, 1] (Zhao et al., 2020).

    Every random parameter is drawn on the CPU from ``generator`` (checkpointed), so runs resume exactly.

    * ``colour``: brightness shift in [-0.5, 0.5), saturation scale in [0, 2), contrast scale in [0.5, 1.5)
      (on the [0, 1] scale, i.e. doubled here for [-1, 1]).
    * ``translation``: integer shift up to 1/8 of the size, zeros (mid-grey) fill.
    * ``cutout``: one square of half the size set to zero (mid-grey).
    """
    if not ops:
        return x
    batch, _, height, width = x.shape

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator).to(x.device, x.dtype)

    if "colour" in ops:
        x = x + (uniform(batch, 1, 1, 1) - 0.5) * 2.0
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (uniform(batch, 1, 1, 1) * 2.0) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (uniform(batch, 1, 1, 1) + 0.5) + mean
    if "translation" in ops:
        max_y, max_x = int(height * 0.125 + 0.5), int(width * 0.125 + 0.5)
        dy = torch.randint(-max_y, max_y + 1, (batch,), generator=generator)
        dx = torch.randint(-max_x, max_x + 1, (batch,), generator=generator)
        x = _shift(x, dy.to(x.device), dx.to(x.device))
    if "cutout" in ops:
        cut_h, cut_w = int(height * 0.5 + 0.5), int(width * 0.5 + 0.5)
        cy = torch.randint(0, height + (1 - cut_h % 2), (batch,), generator=generator).to(x.device)
        cx = torch.randint(0, width + (1 - cut_w % 2), (batch,), generator=generator).to(x.device)
        rows = torch.arange(height, device=x.device)[None, :] - (cy[:, None] - cut_h // 2)
        cols = torch.arange(width, device=x.device)[None, :] - (cx[:, None] - cut_w // 2)
        inside = ((rows >= 0) & (rows < cut_h))[:, :, None] & ((cols >= 0) & (cols < cut_w))[:, None, :]
        x = x * (~inside)[:, None].to(x.dtype)
    return x


def _shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Move sample ``b`` by ``(dy[b], dx[b])`` whole pixels; uncovered pixels become 0."""
    batch, channels, height, width = x.shape
    rows = torch.arange(height, device=x.device)[None, :] - dy[:, None]  # source row of each output row
    cols = torch.arange(width, device=x.device)[None, :] - dx[:, None]
    valid = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    rows, cols = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
    index = (rows[:, :, None] * width + cols[:, None, :]).reshape(batch, 1, height * width)
    out = x.reshape(batch, channels, height * width).gather(2, index.expand(-1, channels, -1))
    return out.reshape(batch, channels, height, width) * valid[:, None].to(x.dtype)


# ----------------------------------------------------------------------------------------------------------
# Data


class FolderImages(DecodedItems):
    """Every image under a folder (recursive), composited on the background, made square and resized.

    Non-square images are centre-cropped to a square first. Decoded images are cached in RAM as uint8
    (3, R, R) tensors when they fit in ``data.cache_limit_mb``.
    """

    def __init__(self, folder: str | Path, data: DataConfig, resolution: int) -> None:
        self.folder = split_folder(folder, "train")
        self.data, self.resolution = data, resolution
        self.files = list_images(self.folder, recursive=True)
        if not self.files:
            raise DatasetError("no images found (expected JPEG/PNG/BMP/TIFF/WebP files, searched recursively)",
                               path=self.folder)
        self._init_cache(len(self.files), 3 * resolution**2, data)

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "layout": "images", "images": len(self.files),
                "resolution": self.resolution, "background": list(self.data.background)}

    def _decode(self, index: int) -> torch.Tensor:
        image = square_resize(read_image(self.files[index], self.data.background), self.resolution)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def square_resize(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop an RGB image to a square, then resize to ``resolution`` (area when shrinking)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_rgb(np.ascontiguousarray(image[top: top + side, left: left + side]), resolution, resolution)


# ----------------------------------------------------------------------------------------------------------
# Trainer


def check_resolution(size: tuple[int, int]) -> int:
    if size[0] != size[1] or size[0] not in RESOLUTIONS:
        raise ConfigError(f"stylegan2 trains square images of 32, 64, 128 or 256 pixels; got --size "
                          f"{size[0]}x{size[1]}", value=size)
    return size[0]


class StyleGAN2Trainer(Trainer):
    """One step = D main (+ lazy R1) then G main (+ lazy path length), then the G_ema update."""

    def __init__(self, config: StyleGAN2Config, train: TrainConfig, data: DataConfig, device: torch.device) -> None:
        super().__init__(config, train, data, device)
        check_resolution(train.size)
        check_size_fields(config, train.size)
        self.dataset = FolderImages(data.path, data, config.resolution)
        self.sampler = EpochSampler(len(self.dataset), train.seed)
        self.latent_generator = torch.Generator().manual_seed(train.seed + 2)
        self.G = StyleGAN2.build_generator(config)
        self.D = Discriminator(config.resolution, config.channel_base, config.channel_max,
                               mbstd_group=config.mbstd_group)
        self.G_ema = StyleGAN2.build_generator(config)
        self.G_ema.load_state_dict(self.G.state_dict())
        set_requires_grad(self.G_ema, False)
        self.G_ema.eval()
        self.nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        # Main passes may run compiled; the regularisers need double backward, so they use the plain modules.
        self.G.to(device)
        self.synthesis_fwd = prepare_module(self.G.synthesis_network, device, train)
        self.D_fwd = prepare_module(self.D, device, train)
        self.G_ema.to(device)
        # Lazy regularisation: the optimiser sees reg steps as part of a longer interval (paper, appendix B).
        self.optimizers, self.base_lrs = {}, {}
        for name, net, interval, active in (("G", self.G, config.pl_interval, config.pl_weight > 0),
                                            ("D", self.D, config.r1_interval, config.r1_gamma > 0)):
            ratio = interval / (interval + 1) if active else 1.0
            lr = {"G": config.lr_g, "D": config.lr_d}[name]
            betas = (config.betas[0] ** ratio, config.betas[1] ** ratio)
            self.optimizers[name] = make_adam(net.parameters(), lr * ratio, betas, device)
            self.base_lrs[name] = lr * ratio
        self.step = 0
        self.pl_mean = torch.zeros((), device=device)
        fixed = torch.Generator().manual_seed(12345)
        self.fixed_z = torch.randn(len(SAMPLE_SEEDS), config.z_dim, generator=fixed)

    # --- data -------------------------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        indices = self.sampler.next_batch(self.train.batch_size)
        batch = torch.stack([self.dataset[i] for i in indices])
        if self.data.flip:
            flips = torch.rand(len(indices), generator=self.augment_generator) < 0.5
            batch = torch.where(flips.view(-1, 1, 1, 1), batch.flip(-1), batch)
        return to_minus_one_one(batch.to(self.device, non_blocking=True))

    @property
    def kimg(self) -> float:
        return self.step * self.global_batch_size / 1000

    def describe_data(self) -> dict[str, Any]:
        res = self.model_config.resolution
        return {**self.dataset.describe(), "size": f"{res}x{res}"}

    def set_lr_factor(self, factor: float) -> None:
        # StyleGAN2 trains at a constant rate; decay only when the user asked for it with --decay-start.
        super().set_lr_factor(factor if self.train.decay_start is not None else 1.0)

    # --- optimisation ------------------------------------------------------------------------------------
    def _latents(self, count: int) -> torch.Tensor:
        return torch.randn(count, self.model_config.z_dim, generator=self.latent_generator).to(self.device)

    def _mapped(self, count: int) -> torch.Tensor:
        """ws for ``count`` fresh latents, with style mixing at a random layer with ``style_mixing_prob``."""
        cfg = self.model_config
        ws = self.G.mapping(self._latents(count), update_w_avg=True)
        mix = torch.rand((), generator=self.latent_generator) < cfg.style_mixing_prob
        cutoff = int(torch.randint(1, self.G.num_ws, (), generator=self.latent_generator))
        other = self._latents(count)
        if bool(mix):
            ws2 = self.G.mapping(other, update_w_avg=False)
            ws = Generator.mix_styles(ws, ws2, cutoff, self.G.num_ws)
        return ws

    def _D(self, images: torch.Tensor, regularising: bool = False) -> torch.Tensor:
        net = self.D if regularising else self.D_fwd
        return net(diff_augment(images, self.model_config.augmentations, self.augment_generator))

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, train = self.model_config, self.train
        self.step += 1
        n = batch.shape[0]
        losses: dict[str, torch.Tensor] = {}
        # Discriminator: real -> real, generated -> fake.
        set_requires_grad(self.D, True)
        set_requires_grad(self.G, False)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with autocast(self.device, train):
            with torch.no_grad():
                fake = self.synthesis_fwd(self._mapped(n))
            # Two passes, not one on the concatenation: minibatch-std groups must hold only fakes or only reals.
            fake_logits, real_logits = self._D(fake).float(), self._D(batch).float()
            loss_d = d_logistic_loss(real_logits, fake_logits)
        self.backward(loss_d)
        self.optimizer_step("D")
        losses["D"] = loss_d.detach()
        losses["D_real"] = real_logits.detach().mean()
        losses["D_fake"] = fake_logits.detach().mean()
        if cfg.r1_gamma > 0 and self.step % cfg.r1_interval == 0:
            self.optimizers["D"].zero_grad(set_to_none=True)
            real = batch.detach().requires_grad_(True)
            penalty = r1_penalty(self._D(real, regularising=True).float(), real)
            self.backward(penalty * (cfg.r1_gamma / 2) * cfg.r1_interval)
            self.optimizer_step("D")
            self.last_r1 = penalty.detach()
        losses["R1"] = getattr(self, "last_r1", torch.zeros((), device=self.device))
        # Generator: fool the updated discriminator.
        set_requires_grad(self.D, False)
        set_requires_grad(self.G, True)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with autocast(self.device, train):
            fake = self.synthesis_fwd(self._mapped(n))
            loss_g = g_nonsaturating_loss(self._D(fake).float())
        self.backward(loss_g)
        self.optimizer_step("G")
        losses["G"] = loss_g.detach()
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            self.optimizers["G"].zero_grad(set_to_none=True)
            ws = self._mapped(max(1, n // cfg.pl_batch_shrink))
            images = self.G.synthesis(ws)
            penalty, self.pl_mean, _ = path_length_penalty(images, ws, self.pl_mean, cfg.pl_decay)
            self.pl_mean = self.dist.mean(self.pl_mean)  # the whole batch's running mean on every rank
            # The zero-weighted image term keeps every synthesis parameter in the graph.
            self.backward(penalty * cfg.pl_weight * cfg.pl_interval + images[:, 0, 0, 0].sum() * 0)
            self.optimizer_step("G")
            self.last_pl = penalty.detach()
        losses["PL"] = getattr(self, "last_pl", torch.zeros((), device=self.device))
        self._update_ema()
        set_requires_grad(self.G, False)
        return losses

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.model_config
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.step * self.global_batch_size * cfg.ema_rampup)
        beta = 0.5 ** (self.global_batch_size / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def sample_grid(self) -> np.ndarray:
        """Rows: truncation psi 1 and 0.7; columns: fixed seeds; generator G_ema with constant noise."""
        z = self.fixed_z.to(self.device)
        rows = []
        with inference_mode(self.G_ema):
            for psi in SAMPLE_PSIS:
                rows.append(list(self.G_ema(z, psi=psi, noise_mode="const").float()))
        return image_grid(rows)

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"pl_mean": self.pl_mean.reshape(1), "rng_latent": self.latent_generator.get_state()}
        for name in ("last_r1", "last_pl"):
            if hasattr(self, name):
                tensors[name] = getattr(self, name).reshape(1)
        return tensors, {"step": self.step, "kimg": round(self.kimg, 3)}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        self.step = int(info["step"])
        self.pl_mean = tensors["pl_mean"].to(self.device).reshape(())
        self.latent_generator.set_state(tensors["rng_latent"].cpu())
        for name in ("last_r1", "last_pl"):
            if name in tensors:
                setattr(self, name, tensors[name].to(self.device).reshape(()))


# ----------------------------------------------------------------------------------------------------------
# Family


@register_family("stylegan2")
class StyleGAN2(Family):
    """Unconditional image generation from random latents, with latent editing (see engine.families.stylegan2.latent)."""

    config_cls = StyleGAN2Config
    input_kind = "latent"
    generator_key = "G_ema"
    paired_metrics = False  # generated from noise: compared with the training images by FID/KID only
    description = "StyleGAN2 on any image folder: random images, truncation, style mixing, latent editing"
    layouts = ("images",)
    # a 64x64 generator small enough to answer in a fraction of a second on a CPU, to try the latent editor
    untrained_config = {"resolution": 64, "z_dim": 128, "w_dim": 128, "mapping_layers": 4, "channel_base": 2048,
                        "channel_max": 64}
    inference_options = (
        InferenceOption("psi", "float", "truncation: 1 keeps the latent, 0 gives the average image", 1.0),
        InferenceOption("cutoff", "int", "truncate the layers below this one (none: all)"),
        InferenceOption("noise_mode", "choice", "per-layer noise: constant (repeatable), random or none", "const",
                        NOISE_MODES),
    )
    retunable = ("r1_gamma", "pl_weight", "style_mixing_prob", "ema_kimg", "diffaug")
    # The paper's regularisation, without DiffAugment (which came after it); the defaults learn more per CPU-hour
    # on small sets (docs/recipes.md).
    recipes = {"reference": {"pl_weight": 2.0, "style_mixing_prob": 0.9, "diffaug": "none"}}

    @classmethod
    def build_generator(cls, config: StyleGAN2Config) -> Generator:
        generator = Generator(config.z_dim, config.w_dim, config.resolution, config.mapping_layers,
                              config.channel_base, config.channel_max)
        if config.mapping_lr_mul != 0.01:
            _set_mapping_lr_mul(generator, config.mapping_lr_mul)
        return generator

    @classmethod
    def native_size(cls, config: StyleGAN2Config) -> tuple[int, int]:
        return config.resolution, config.resolution

    @classmethod
    def open_session(cls, loaded: LoadedNetwork, device: str = "auto", backend: str = "torch") -> LatentSession:
        """A :class:`~engine.families.stylegan2.latent.LatentSession`: latents in, images out, and the latent tools
        (the compiled backends serve ``ganvas export``/``bench``, not the editor)."""
        from engine.families.stylegan2.latent import LatentSession  # latent.py builds on this module

        return LatentSession.from_network(loaded, device)

    @classmethod
    def check_retune(cls, old: StyleGAN2Config, new: StyleGAN2Config) -> None:
        """A regulariser may change weight but not turn on or off: lazy regularisation set the optimisers'
        learning rate and betas from it when the run began."""
        for name in ("r1_gamma", "pl_weight"):
            if (getattr(old, name) > 0) != (getattr(new, name) > 0):
                raise ConfigError(f"--{name.replace('_', '-')} cannot turn its regulariser on or off on resume "
                                  f"(it was {getattr(old, name)}); start a new run for that", value=getattr(new, name))

    @classmethod
    def infer(cls, network: Generator, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """Latents z (B, z_dim) -> images (B, 3, R, R); options ``psi``, ``cutoff``, ``noise_mode``."""
        cls._check_latents(network, batch, options)
        return network(batch, psi=float(options.get("psi", 1.0)), cutoff=options.get("cutoff"),
                       noise_mode=options.get("noise_mode", "const"))

    @classmethod
    def _check_latents(cls, network: nn.Module, batch: torch.Tensor, options: dict[str, Any]) -> None:
        cls.check_options(options)
        if batch.ndim != 2 or batch.shape[1] != network.z_dim:
            raise ConfigError(f"stylegan2 expects latents of shape (B, {network.z_dim}), got {tuple(batch.shape)}")

    @classmethod
    def resolve_split(cls, data_path: str | Path, split: str) -> Path:
        """StyleGAN2 learns one image folder (its ``train/`` when there is one): samples are compared with it."""
        return Path(data_path)

    @classmethod
    def eval_batches(cls, session: Any, data: DataConfig, split_dir: Any, limit: int | None,
                     samples: int) -> Iterator[EvalBatch]:
        """``samples`` images from the latents of seeds 0, 1, ... (psi 1, constant noise) as outputs, and the
        training images (the first ``limit``, or all) as targets."""
        reals = FolderImages(split_dir, replace(data, cache=False), session.size[0])
        count_real = len(reals) if limit is None else min(limit, len(reals))
        z_dim = session.generator.z_dim
        batch = 16
        for start in range(0, max(samples, count_real), batch):
            outputs = targets = None
            if start < samples:
                seeds = range(start, min(samples, start + batch))
                z = torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
                outputs = session.translate_tensor(z).cpu()
            if start < count_real:
                targets = to_minus_one_one(torch.stack([reals[i] for i in range(start, min(count_real, start + batch))]))
            yield EvalBatch(outputs, targets, group="", paired=False)

    @classmethod
    def export_graphs(cls, network: nn.Module, card: Any) -> list[Any]:
        """``mapping``: z (B, z_dim), psi (1,) and cutoff (1,) int64 -> ws (B, num_ws, w_dim), truncated toward
        ``w_avg`` by psi on layers < cutoff; ``synthesis``: ws -> image (B, 3, R, R) with the constant noise."""
        from engine.infer.graphs import Call, ExportGraph, inference_copy

        generator = inference_copy(network, False)
        z = torch.randn(2, generator.z_dim)
        psi, cutoff = torch.tensor([0.7]), torch.tensor([generator.num_ws], dtype=torch.int64)
        ws = generator.mapping(z)
        notes = {"z": "latent (B, z_dim) from N(0, I)", "psi": "truncation (1,): 1 keeps w, 0 gives w_avg",
                 "cutoff": f"(1,) int64: truncate layers below it ({generator.num_ws} = all)",
                 "ws": f"(B, {generator.num_ws}, {generator.w_dim})", "image": "image (B, 3, R, R) in [-1, 1]"}
        return [ExportGraph("mapping", Call(generator, _truncated_mapping), (z, psi, cutoff), ("z", "psi", "cutoff"),
                            ("ws",), {"z": (0,)}, notes),
                ExportGraph("synthesis", Call(generator, lambda g, w: g.synthesis(w, "const")), (ws,), ("ws",),
                            ("image",), {"ws": (0,)}, notes)]

    @classmethod
    def infer_graphs(cls, run: Any, network: nn.Module, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """:meth:`infer` through ``mapping`` and ``synthesis`` (constant noise only)."""
        from engine.infer.graphs import GraphsUnsupported

        if options.get("noise_mode", "const") != "const":
            raise GraphsUnsupported("the exported synthesis graph uses the constant noise only")
        cls._check_latents(network, batch, options)
        cutoff = options.get("cutoff")
        ws = run("mapping", batch, torch.tensor([float(options.get("psi", 1.0))]),
                 torch.tensor([network.num_ws if cutoff is None else int(cutoff)], dtype=torch.int64))
        return run("synthesis", ws)

    @classmethod
    def evaluate(cls, session: Any, data: DataConfig, split_dir: Path, limit: int | None) -> dict[str, Any]:
        raise ConfigError("stylegan2 has no paired targets to evaluate against; look at generated samples "
                          "(ganvas generate) instead")

    @classmethod
    def auto_config(cls, size: tuple[int, int], overrides: dict[str, Any]) -> StyleGAN2Config:
        check_resolution(size)
        return StyleGAN2Config(**with_size_fields(StyleGAN2Config, size, overrides))

    @classmethod
    def example_input(cls, config: StyleGAN2Config, size: tuple[int, int], batch_size: int = 1) -> torch.Tensor:
        return torch.randn(batch_size, config.z_dim)

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        """Soft coloured discs on white (RGBA), so a tiny generator has something learnable."""
        rng = np.random.default_rng(0)
        folder.mkdir(parents=True, exist_ok=True)
        h, w = size
        for index in range(count):
            image = np.zeros((h, w, 4), np.uint8)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
            cv2.circle(image, centre, max(2, min(h, w) // 4), (*colour, 255), -1, lineType=cv2.LINE_AA)
            ok, data = cv2.imencode(".png", image)
            if not ok:  # pragma: no cover - OpenCV always encodes PNG
                raise ImageError("could not encode synthetic image", path=folder)
            (folder / f"{index}.png").write_bytes(data.tobytes())
        return folder

    @classmethod
    def make_trainer(cls, config: StyleGAN2Config, train: TrainConfig, data: DataConfig,
                     device: torch.device) -> StyleGAN2Trainer:
        return StyleGAN2Trainer(config, train, data, device)


def _set_mapping_lr_mul(generator: Generator, lr_mul: float) -> None:
    """Re-initialise the mapping layers for another learning-rate multiplier (stored weight = N(0,1)/lr_mul)."""
    for layer in generator.mapping_network.net:
        in_features = layer.weight.shape[1]
        with torch.no_grad():
            layer.weight.mul_(layer.lr_mul / lr_mul)
            if layer.bias is not None:
                layer.bias.mul_(layer.lr_mul / lr_mul)
        layer.lr_mul = lr_mul
        layer.weight_gain = lr_mul / math.sqrt(in_features)



def _truncated_mapping(generator: Generator, z: torch.Tensor, psi: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """``generator.mapping`` with psi and cutoff as tensors (graph inputs): w_avg + psi * (w - w_avg) on layers
    below ``cutoff``, w elsewhere."""
    w = generator.mapping_network(z)
    ws = w[:, None].repeat(1, generator.num_ws, 1)
    truncated = generator.w_avg[None, None] + psi.view(1, 1, 1) * (ws - generator.w_avg[None, None])
    layer = torch.arange(generator.num_ws)[None, :, None]
    return torch.where(layer < cutoff.view(1, 1, 1), truncated, ws)
