"""pix2pix (Isola et al., 2017): U-Net generator, PatchGAN discriminator, cGAN + lambda * L1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import (
    DataConfig,
    TrainConfig,
    check,
    check_choice,
    check_optimizer,
    check_positive,
    setting,
)
from engine.core.errors import ConfigError
from engine.core.imageio import write_image
from engine.core.registry import register_family
from engine.data.augment import PairedAugment, to_minus_one_one
from engine.data.datasets import EpochSampler, PairedImages, split_folder
from engine.data.palette import Palette
from engine.families.base import Family
from engine.infer.mode import inference_mode
from engine.train.common import autocast, center_crop, image_grid, make_adam, prepare_module
from engine.train.trainer import Trainer, set_requires_grad
from models.layers import NORMS
from models.losses import GAN_MODES, discriminator_loss, generator_loss, gradient_penalty
from models.patchgan import PatchDiscriminator
from models.unet import DeepFeatureCache, UNetGenerator


@dataclass(frozen=True)
class Pix2PixConfig:
    """Networks and loss weights of pix2pix.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    in_channels: int = setting(3, "image channels of the input.")
    out_channels: int = setting(3, "image channels of the output.")
    depth: int = setting(8, "U-Net downsamplings (8 = U-Net-256, 7 = U-Net-128); sizes must be multiples of "
                         "``2**depth``.")
    ngf: int = setting(64, "base width of the generator.")
    ndf: int = setting(64, "base width of the discriminator.")
    norm: str = setting("batch", "``batch``, ``instance`` or ``none`` (both networks).")
    dropout: bool = setting(False, "dropout 0.5 in the generator's inner decoder levels (the reference recipe's; "
                            "off by default: it learns faster without, docs/recipes.md).")
    n_layers_d: int = setting(3, "PatchGAN stride-2 layers (3 = 70x70 patches).")
    gan_mode: str = setting("lsgan", "``vanilla`` (the reference recipe's), ``lsgan``, ``hinge`` or ``wgan`` "
                            "(with gradient penalty).")
    lambda_l1: float = setting(100.0, "weight of the L1 term.")
    gp_weight: float = setting(10.0, "gradient penalty weight for ``wgan``.")
    palette: str = setting("", "label palette (bundled name or JSON path) when the inputs are colour label "
                           "maps, e.g. ``facades`` for labels -> photo; the app then draws label maps in it. "
                           "Empty for photos, edges, sketches.")
    lr_g: float = setting(4e-4, "Adam learning rate of the generator (the reference recipe's: 2e-4).")
    lr_d: float = setting(4e-4, "Adam learning rate of the discriminator (the reference recipe's: 2e-4).")
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam betas (beta1,beta2) of both networks.")

    def __post_init__(self) -> None:
        check(5 <= self.depth <= 10, "depth", self.depth, "an integer from 5 to 10")
        for name in ("in_channels", "out_channels", "ngf", "ndf", "n_layers_d"):
            check_positive(name, getattr(self, name))
        check_choice("norm", self.norm, NORMS)
        check_choice("gan_mode", self.gan_mode, GAN_MODES)
        check_positive("lambda_l1", self.lambda_l1, allow_zero=True)
        check_optimizer(self)

    @property
    def stride(self) -> int:
        return 2**self.depth


def depth_for_size(size: tuple[int, int]) -> int:
    """The pix2pix U-Net depth for a training size: log2 of the smaller side, at most 8 (U-Net-256)."""
    smallest = min(size)
    depth = 5
    while depth < 8 and smallest % 2 ** (depth + 1) == 0 and smallest >= 2 ** (depth + 1):
        depth += 1
    return depth


def check_size(size: tuple[int, int], stride: int, what: str = "size") -> None:
    if size[0] % stride or size[1] % stride:
        raise ConfigError(f"{what} {size[0]}x{size[1]} must be a multiple of {stride} for this network "
                          f"(e.g. {max(stride, size[0] // stride * stride)})", value=size)


class Pix2PixTrainer(Trainer):
    def __init__(self, config: Pix2PixConfig, train: TrainConfig, data: DataConfig, device: torch.device) -> None:
        super().__init__(config, train, data, device)
        check_size(train.size, config.stride)
        if config.palette:
            Palette.load(config.palette)  # a bad name or file fails now, not in the app later
        self.dataset = PairedImages(split_folder(data.path, "train"), data, train.size)
        self.sampler = EpochSampler(len(self.dataset), train.seed)
        self.augment = PairedAugment(train.size, data.flip, device, self.augment_generator)
        self.G = Pix2Pix.build_generator(config)
        self.D = PatchDiscriminator(config.in_channels + config.out_channels, config.ndf, config.n_layers_d,
                                    config.norm)
        self.nets = {"G": self.G, "D": self.D}
        self.G_fwd = prepare_module(self.G, device, train)
        self.D_fwd = prepare_module(self.D, device, train)
        self.optimizers = {"G": make_adam(self.G.parameters(), config.lr_g, config.betas, device),
                           "D": make_adam(self.D.parameters(), config.lr_d, config.betas, device)}
        self.base_lrs = {"G": config.lr_g, "D": config.lr_d}
        count = min(4, len(self.dataset))
        self.fixed = torch.stack([center_crop(self.dataset[i], train.size) for i in range(count)])

    def next_batch(self) -> torch.Tensor:
        indices = self.sampler.next_batch(self.train.batch_size)
        batch = self.augment([self.dataset[i] for i in indices])
        if self.device.type == "cuda" and self.train.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.model_config
        real_a, real_b = batch[:, : cfg.in_channels], batch[:, cfg.in_channels:]
        with autocast(self.device, self.train):
            fake_b = self.G_fwd(real_a)
        # Discriminator: real pairs -> real, generated pairs -> fake.
        set_requires_grad(self.D, True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with autocast(self.device, self.train):
            fake_pair = torch.cat([real_a, fake_b.detach()], dim=1)
            real_pair = torch.cat([real_a, real_b], dim=1)
            if cfg.norm == "batch":  # batch statistics must not mix real and fake pairs
                pred_fake, pred_real = self.D_fwd(fake_pair).float(), self.D_fwd(real_pair).float()
            else:  # one pass over both halves is cheaper and computes the same
                pred_fake, pred_real = self.D_fwd(torch.cat([fake_pair, real_pair], dim=0)).float().chunk(2)
            loss_d = discriminator_loss(pred_real, pred_fake, cfg.gan_mode)
        if cfg.gan_mode == "wgan":
            loss_d = loss_d + gradient_penalty(self.D_fwd, real_pair, fake_pair, cfg.gp_weight)
        self.backward(loss_d)
        self.optimizer_step("D")
        # Generator: fool the updated discriminator and stay close to the target in L1.
        set_requires_grad(self.D, False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with autocast(self.device, self.train):
            pred_fake = self.D_fwd(torch.cat([real_a, fake_b], dim=1)).float()
            loss_g_gan = generator_loss(pred_fake, cfg.gan_mode)
            loss_g_l1 = F.l1_loss(fake_b.float(), real_b) * cfg.lambda_l1
            loss_g = loss_g_gan + loss_g_l1
        self.backward(loss_g)
        self.optimizer_step("G")
        return {"G_gan": loss_g_gan.detach(), "G_L1": loss_g_l1.detach(), "D": loss_d.detach()}

    def sample_grid(self) -> np.ndarray:
        cfg = self.model_config
        batch = to_minus_one_one(self.fixed.to(self.device))
        real_a, real_b = batch[:, : cfg.in_channels], batch[:, cfg.in_channels:]
        with inference_mode(self.G):
            fake_b = self.G(real_a).float()
        return image_grid([[a, f, b] for a, f, b in zip(real_a, fake_b, real_b, strict=True)])


@register_family("pix2pix")
class Pix2Pix(Family):
    """Paired translation: draw (or load) an image of domain A, get one of domain B."""

    config_cls = Pix2PixConfig
    input_kind = "image"
    description = "U-Net + PatchGAN conditional GAN for paired data (labels, edges or sketches -> photos)"
    layouts = ("paired", "aligned")
    untrained_config = {"ngf": 16, "ndf": 16}
    # The pix2pix paper's recipe, which the defaults (LSGAN, no dropout, Adam 4e-4) beat at equal CPU time.
    recipes = {"reference": {"gan_mode": "vanilla", "dropout": True, "lr_g": 2e-4, "lr_d": 2e-4}}

    @classmethod
    def build_generator(cls, config: Pix2PixConfig) -> UNetGenerator:
        return UNetGenerator(config.in_channels, config.out_channels, config.depth, config.ngf, config.norm,
                             config.dropout)

    @classmethod
    def preview_multiple(cls, network: nn.Module) -> int:
        return network.stride // 4

    @classmethod
    def infer_preview(cls, network: nn.Module, batch: torch.Tensor, state: dict[str, Any], refresh: bool,
                      **options: Any) -> torch.Tensor:
        """The U-Net's coarse pass, reusing the deep features (inputs of at most 8x8) unless ``refresh``."""
        if options:
            raise ConfigError(f"pix2pix takes no inference options (got {', '.join(options)})")
        cache = state.setdefault("deep_features", DeepFeatureCache(side=8))
        cache.reuse = not refresh
        return network.preview(batch, cache)

    @classmethod
    def auto_config(cls, size: tuple[int, int], overrides: dict[str, Any]) -> Pix2PixConfig:
        return Pix2PixConfig(**{"depth": depth_for_size(size), **overrides})

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        rng = np.random.default_rng(0)
        for index in range(count):
            pair = rng.integers(0, 256, (size[0], size[1] * 2, 3), dtype=np.uint8)
            write_image(folder / f"{index}.png", pair)
        return folder

    @classmethod
    def make_trainer(cls, config: Pix2PixConfig, train: TrainConfig, data: DataConfig,
                     device: torch.device) -> Pix2PixTrainer:
        return Pix2PixTrainer(config, train, data, device)
