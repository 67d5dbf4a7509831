"""SPADE / GauGAN (Park et al., 2019): semantic image synthesis from label maps.

The generator (:class:`models.spade.SPADEGenerator`) turns a one-hot label map (plus an instance-boundary
channel with ``use_instance``) into a photo; every normalisation layer is modulated by the labels. A
multi-scale PatchGAN sees ``cat(one-hot labels, image)``. The generator (and the optional style encoder)
minimise::

    G_GAN                       hinge adversarial loss, averaged over the discriminator scales
    + lambda_feat * G_feat      discriminator feature matching
    + lambda_vgg * G_VGG        VGG19 perceptual loss (only with vgg_weights: nothing is downloaded)
    + lambda_kld * KLD          KL of the encoder's style code to N(0, I) (only with use_encoder)
    + lambda_l1 * G_L1          L1 to the photo (optional, not in the paper: a stand-in when no VGG weights)

with Adam lr 1e-4 (G and E) / 4e-4 (D), betas (0, 0.9) (two time-scale update rule).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
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
    check_size_fields,
    setting,
    with_size_fields,
)
from engine.core.errors import ConfigError, LabelError
from engine.core.family_spec import InferenceOption
from engine.core.imageio import write_image
from engine.core.registry import register_family
from engine.data.augment import to_minus_one_one
from engine.data.datasets import EpochSampler, split_folder
from engine.data.labels import index_to_color, one_hot, snap_to_palette
from engine.data.palette import Palette
from engine.families.base import Family
from engine.families.spade.label_data import (
    LabelAugment,
    LabelFolders,
    LabelImages,
    official_label_folders,
    split_item,
)
from engine.infer.eval_batch import EvalBatch
from engine.infer.mode import inference_mode
from engine.train.common import (
    autocast,
    center_crop,
    image_grid,
    make_adam,
    prepare_module,
)
from engine.train.trainer import Trainer, set_requires_grad
from models.spade import (
    PARAM_FREE_NORMS,
    UPSAMPLING_MODES,
    ConvEncoder,
    MultiscaleDiscriminator,
    SPADEGenerator,
    VGGPerceptualLoss,
    feature_matching_loss,
    kl_divergence,
    multiscale_discriminator_loss,
    multiscale_generator_loss,
    reparameterize,
)


@functools.lru_cache(maxsize=16)
def load_palette(name_or_path: str) -> Palette:
    """:meth:`Palette.load`, cached (configs and inference look the palette up often)."""
    return Palette.load(name_or_path)


@dataclass(frozen=True)
class SPADEConfig:
    """Networks and loss weights of SPADE.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    palette: str = setting("facades", "bundled palette name (``facades``) or path to a palette JSON; label "
                           "maps are read with it.")
    label_nc: int = setting(0, "label channels (classes + a don't-care channel); 0 = derived from the "
                            "palette.")
    contain_dont_care: bool = setting(False, "add a channel for the palette's don't-care id (else those "
                                      "pixels are all-zero).")
    use_instance: bool = setting(False, "add an instance-boundary channel read from an ``instances/`` "
                                 "folder.")
    image_size: tuple[int, int] = setting((256, 256), "output (height, width): the training --size, which the "
                                          "generator's shape depends on.", follows_size=True)
    ngf: int = setting(64, "base width of the generator and the style encoder (64 in the paper; 16-32 on a "
                       "CPU).")
    ndf: int = setting(64, "base width of the discriminator (64 in the paper; 16-32 on a CPU).")
    num_upsampling_layers: str = setting("normal", "``normal`` (5 upsamplings), ``more`` (6) or ``most`` "
                                         "(7).")
    spade_hidden: int = setting(128, "channels of the conv inside each SPADE layer that reads the label map "
                                "(128 in the paper).")
    param_free_norm: str = setting("instance", "``instance`` or ``batch`` normalisation inside every SPADE "
                                   "layer. Instance norm removes each map's own mean and variance, so a "
                                   "style code can change little beyond layout-bound detail; batch norm (the "
                                   "paper's choice, batch size >= 4) keeps what sets one image apart from "
                                   "the batch, and inference then normalises with the running statistics.")
    use_encoder: bool = setting(False, "VAE style encoder: outputs follow the style of a reference image.")
    z_dim: int = setting(256, "length of the style code.")
    lambda_kld: float = setting(0.05, "weight of the KL term (with use_encoder).")
    lambda_feat: float = setting(10.0, "weight of the discriminator feature matching term.")
    lambda_vgg: float = setting(10.0, "weight of the VGG perceptual term (with vgg_weights).")
    lambda_l1: float = setting(0.0, "weight of an L1 term between output and photo (not in the paper; 0 = "
                               "off). Without VGG weights it is the per-image reconstruction term that makes "
                               "the style encoder carry colour and tone, so seeds and style images change "
                               "the look.")
    vgg_weights: str = setting("", "local VGG19 state dict (.pth) for the perceptual loss; empty = no VGG "
                               "term.")
    num_D: int = setting(2, "discriminator scales.")
    n_layers_D: int = setting(4, "conv blocks per discriminator scale.")
    lr_g: float = setting(2e-4, "Adam learning rate of the generator (and the style encoder); the two "
                          "time-scale rule gives the discriminator 4x. Twice the paper's 1e-4 (its recipe: "
                          "``reference``), which learns faster at equal CPU time (docs/recipes.md).")
    lr_d: float = setting(8e-4, "Adam learning rate of the discriminator (the reference recipe's: 4e-4).")
    betas: tuple[float, float] = setting((0.0, 0.9), "Adam betas (beta1,beta2) of all networks (SPADE uses "
                                         "0,0.9).")

    def __post_init__(self) -> None:
        check(isinstance(self.palette, str) and bool(self.palette.strip()), "palette", self.palette,
              "a bundled palette name or a path to a palette JSON")
        if self.label_nc == 0:
            palette = load_palette(self.palette)
            derived = palette.n_classes + (1 if self.contain_dont_care else 0)
            object.__setattr__(self, "label_nc", derived)
        for name in ("label_nc", "ngf", "ndf", "spade_hidden", "z_dim", "num_D", "n_layers_D"):
            check_positive(name, getattr(self, name))
        if self.contain_dont_care:
            check(self.label_nc >= 2, "label_nc", self.label_nc, "classes + 1 with contain_dont_care")
        check_choice("num_upsampling_layers", self.num_upsampling_layers, UPSAMPLING_MODES)
        check_choice("param_free_norm", self.param_free_norm, PARAM_FREE_NORMS)
        for name in ("lambda_kld", "lambda_feat", "lambda_vgg", "lambda_l1"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_optimizer(self)
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        check_image_size(self.image_size, self.num_upsampling_layers)

    @property
    def n_classes(self) -> int:
        """Class channels (without the don't-care channel)."""
        return self.label_nc - (1 if self.contain_dont_care else 0)

    @property
    def input_nc(self) -> int:
        """Generator input channels: label channels plus the instance-boundary channel."""
        return self.label_nc + (1 if self.use_instance else 0)

    @property
    def encoder_input_size(self) -> int:
        """Side the style encoder resizes images to: the largest power of two <= the smaller side, at most 256."""
        side = 8
        while side * 2 <= min(256, *self.image_size):
            side *= 2
        return side


def check_image_size(size: tuple[int, int], mode: str) -> None:
    n = UPSAMPLING_MODES[mode]
    if len(size) != 2 or min(size) <= 0 or size[0] % 2**n or size[1] % 2**n or size[0] == size[1] == 2**n:
        raise ConfigError(f"size {size[0]}x{size[1]} does not fit num_upsampling_layers={mode}: each side must be "
                          f"a multiple of {2**n} and the size larger than {2**n}x{2**n} (e.g. {2**(n + 1)}, "
                          f"or {2**n}x{2**(n + 1)})", value=size)


def label_input(labels: torch.Tensor, config: SPADEConfig, dont_care: int | None,
                edges: torch.Tensor | None = None) -> torch.Tensor:
    """Class ids (B, H, W) -> generator input (B, input_nc, H, W): one-hot (+ don't-care) (+ edges).

    Without ``edges`` and with ``use_instance``, the class boundaries stand in for instance boundaries.
    """
    labels = labels.long()
    if config.contain_dont_care and dont_care is not None:
        labels = labels.masked_fill(labels == dont_care, config.n_classes)
        out = one_hot(labels, config.label_nc)
    else:
        out = one_hot(labels, config.n_classes, dont_care)
        if config.contain_dont_care:
            out = torch.cat([out, out.new_zeros(out.shape[0], 1, *out.shape[2:])], 1)
    if config.use_instance:
        if edges is None:
            edges = label_edges(labels)
        out = torch.cat([out, edges.to(out)], 1)
    return out


def label_edges(labels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) ids -> (B, 1, H, W) float: 1 where a 4-neighbour has another id."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    horizontal = labels[:, :, 1:] != labels[:, :, :-1]
    vertical = labels[:, 1:, :] != labels[:, :-1, :]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge.unsqueeze(1).float()


class SPADEInference(nn.Module):
    """What an inference session holds: the generator ``G`` and, with ``use_encoder``, the style encoder ``E``."""

    def __init__(self, config: SPADEConfig) -> None:
        super().__init__()
        self.config = config
        self.G = SPADE.build_generator(config)
        self.E = SPADE.build_encoder(config) if config.use_encoder else None
        try:
            self.dont_care = load_palette(config.palette).dont_care
        except ConfigError:  # a palette file left behind on another machine: ids are still usable
            self.dont_care = None


class SPADETrainer(Trainer):
    """``G`` (and ``E``, in the same Adam optimizer) then ``D`` in each step; D sees the step's fakes."""

    def __init__(self, config: SPADEConfig, train: TrainConfig, data: DataConfig, device: torch.device) -> None:
        super().__init__(config, train, data, device)
        check_size_fields(config, train.size)
        self.palette = load_palette(config.palette)
        if self.palette.n_classes != config.n_classes:
            raise ConfigError(f"palette {self.palette.name!r} has {self.palette.n_classes} classes but label_nc "
                              f"{config.label_nc} expects {config.n_classes}", value=config.label_nc)
        self.dataset = LabelImages(split_folder(data.path, "train"), data, train.size, self.palette,
                                   config.use_instance)
        self.sampler = EpochSampler(len(self.dataset), train.seed)
        self.augment = LabelAugment(train.size, data.flip, device, self.augment_generator)
        self.G = SPADE.build_generator(config)
        self.D = MultiscaleDiscriminator(config.input_nc + 3, config.ndf, config.n_layers_D, config.num_D)
        self.nets: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        generator_params = list(self.G.parameters())
        if config.use_encoder:
            self.E = SPADE.build_encoder(config)
            self.nets["E"] = self.E
            generator_params += list(self.E.parameters())
            self.E_fwd = prepare_module(self.E, device, train)
        self.G_fwd = prepare_module(self.G, device, train)
        self.D_fwd = prepare_module(self.D, device, train)
        self.optimizers = {"G": make_adam(generator_params, config.lr_g, config.betas, device),
                           "D": make_adam(self.D.parameters(), config.lr_d, config.betas, device)}
        self.base_lrs = {"G": config.lr_g, "D": config.lr_d}
        self.vgg: VGGPerceptualLoss | None = None
        if config.vgg_weights and config.lambda_vgg > 0:
            try:
                self.vgg = VGGPerceptualLoss(config.vgg_weights).to(device)
            except (FileNotFoundError, RuntimeError, KeyError) as exc:
                raise ConfigError(f"cannot load VGG19 weights ({exc})", path=config.vgg_weights) from exc
        count = min(4, len(self.dataset))
        self.fixed = torch.stack([center_crop(self.dataset[i], train.size) for i in range(count)])

    @property
    def vgg_note(self) -> str:
        if self.vgg is not None:
            return "VGG loss on"
        if self.model_config.lambda_vgg == 0:
            return "VGG loss off (lambda_vgg 0)"
        return "VGG loss off: no --vgg-weights given (a local VGG19 .pth; nothing is downloaded)"

    # --- data -------------------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self.sampler.next_batch(self.train.batch_size)
        photo, labels, edges = self.augment([self.dataset[i] for i in indices])
        return label_input(labels, self.model_config, self.palette.dont_care, edges), photo

    def describe_data(self) -> dict[str, Any]:
        return {**super().describe_data(), "notes": self.vgg_note}

    # --- optimisation ----------------------------------------------------------------------------------
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.model_config
        label, real = batch
        losses: dict[str, torch.Tensor] = {}
        # Generator (and encoder): fool D, match its features, stay perceptually close, keep z Gaussian.
        set_requires_grad(self.D, False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with autocast(self.device, self.train):
            z = None
            if cfg.use_encoder:
                mu, logvar = self.E_fwd(real)
                mu, logvar = mu.float(), logvar.float()
                z = reparameterize(mu, logvar)
                losses["KLD"] = kl_divergence(mu, logvar) * cfg.lambda_kld
            fake = self.G_fwd(label, z)
            outputs = self.D_fwd(torch.cat([torch.cat([label, fake], 1), torch.cat([label, real], 1)]))
            fake_out, real_out = _split_outputs(outputs)
            losses["G_GAN"] = multiscale_generator_loss(fake_out, "hinge")
            losses["G_feat"] = feature_matching_loss(real_out, fake_out) * cfg.lambda_feat
            if self.vgg is not None:
                losses["G_VGG"] = self.vgg(fake.float(), real) * cfg.lambda_vgg
            if cfg.lambda_l1 > 0:
                losses["G_L1"] = F.l1_loss(fake.float(), real) * cfg.lambda_l1
            loss_g = torch.stack(list(losses.values())).sum()
        self.backward(loss_g)
        self.optimizer_step("G")
        # Discriminator: hinge loss on real pairs and on this step's generated pairs.
        set_requires_grad(self.D, True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with autocast(self.device, self.train):
            outputs = self.D_fwd(torch.cat([torch.cat([label, fake.detach()], 1), torch.cat([label, real], 1)]))
            fake_out, real_out = _split_outputs(outputs)
            loss_d = multiscale_discriminator_loss(real_out, fake_out, "hinge")
        self.backward(loss_d)
        self.optimizer_step("D")
        losses = {k: v.detach() for k, v in losses.items()}
        losses["D"] = loss_d.detach()
        return losses

    def sample_grid(self) -> np.ndarray:
        """Rows of ``label map (palette colours) | output | target``; with the encoder, styled by the target."""
        cfg = self.model_config
        photo, labels, edges = split_item(self.fixed.to(self.device))
        label = label_input(labels, cfg, self.palette.dont_care, edges)
        nets = [self.G] + ([self.E] if cfg.use_encoder else [])
        with inference_mode(nets[-1]), inference_mode(self.G, batch_stats=False):
            z = self.E(photo)[0] if cfg.use_encoder else None
            fake = self.G(label, z).float()
        colored = [to_minus_one_one(torch.from_numpy(index_to_color(m.cpu().numpy().astype(np.uint8), self.palette))
                                 .permute(2, 0, 1)) for m in labels]
        return image_grid([[c, f, p] for c, f, p in zip(colored, fake.cpu(), photo.cpu(), strict=True)])


def _split_outputs(outputs: list[list[torch.Tensor]]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """D outputs on ``cat([fake, real])`` -> (fake outputs, real outputs), each scale's features split in two."""
    fake, real = [], []
    for scale in outputs:
        halves = [t.float().chunk(2) for t in scale]
        fake.append([h[0] for h in halves])
        real.append([h[1] for h in halves])
    return fake, real


@register_family("spade")
class SPADE(Family):
    """Label map -> photo: paint classes with a palette, get an image (GauGAN)."""

    config_cls = SPADEConfig
    input_kind = "labels"
    preview_guided = False  # label ids are no image to follow
    inference_batch_stats = False  # batch norm (param_free_norm="batch") uses its running statistics
    description = "SPADE/GauGAN semantic image synthesis: colour label maps (palette classes) -> photos"
    layouts = ("labels+images", "aligned+labels")
    untrained_config = {"ngf": 16}
    # The SPADE paper's learning rates, which twice them (the defaults) beat at equal CPU time.
    recipes = {"reference": {"lr_g": 1e-4, "lr_d": 4e-4}}
    inference_options = (  # only with the style encoder (model_options)
        InferenceOption("seed", "int", "the random style code (when no style image is given)", 0),
        InferenceOption("style", "image", "take the style of this image (RGB) through the encoder"),
    )

    @classmethod
    def build_generator(cls, config: SPADEConfig) -> SPADEGenerator:
        return SPADEGenerator(config.input_nc, 3, config.ngf, config.image_size, config.num_upsampling_layers,
                              config.use_encoder, config.z_dim, spectral=True, hidden=config.spade_hidden,
                              param_free_norm=config.param_free_norm)

    @classmethod
    def build_encoder(cls, config: SPADEConfig) -> ConvEncoder:
        return ConvEncoder(3, config.ngf, config.z_dim, config.encoder_input_size, spectral=True)

    @classmethod
    def make_trainer(cls, config: SPADEConfig, train: TrainConfig, data: DataConfig,
                     device: torch.device) -> SPADETrainer:
        return SPADETrainer(config, train, data, device)

    @classmethod
    def auto_config(cls, size: tuple[int, int], overrides: dict[str, Any]) -> SPADEConfig:
        return SPADEConfig(**with_size_fields(SPADEConfig, size, overrides))

    # --- inference ------------------------------------------------------------------------------------
    @classmethod
    def inference_network(cls, config: SPADEConfig) -> SPADEInference:
        return SPADEInference(config)

    @classmethod
    def inference_weights(cls, checkpoint: Any) -> dict[str, torch.Tensor]:
        weights = {f"G.{k}": v for k, v in checkpoint.group("net.G").items()}
        weights.update({f"E.{k}": v for k, v in checkpoint.group("net.E").items()})
        return weights

    @classmethod
    def prepare_input(cls, image: np.ndarray, card: Any) -> torch.Tensor:
        """A colour label map (H, W, 3) in exact palette colours, or an index map (H, W) -> (1, 1, h, w) ids.

        Colours are snapped to the model's palette strictly (foreign colours raise :class:`LabelError`), then
        the id map is resized with nearest neighbours to the model's size.
        """
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        if image.ndim == 3:
            ids = snap_to_palette(np.ascontiguousarray(image, dtype=np.uint8), load_palette(card.config["palette"]))
        elif image.ndim == 2:
            ids = image.astype(np.uint8)
        else:
            raise LabelError(f"expected a colour label map (H, W, 3) or an index map (H, W), got {image.shape}",
                             value=image.shape)
        height, width = card.size
        if ids.shape != (height, width):
            ids = cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(ids).float()[None, None]

    @classmethod
    def model_options(cls, model_config: dict[str, Any]) -> tuple[str, ...]:
        """A style image or a seed with the style encoder; nothing without it (the output is deterministic)."""
        return super().model_options(model_config) if model_config.get("use_encoder") else ()

    @classmethod
    def infer(cls, network: SPADEInference, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """Label maps -> images (B, 3, H, W) in [-1, 1].

        ``batch`` is an id map as floats (B, 1, H, W) or the generator input itself (B, label_nc[+1], H, W).
        Options (style code, only with ``use_encoder``): ``style``, an RGB uint8 image (H, W, 3) or a tensor
        (B, 3, H, W) in [-1, 1] whose encoder mean is the code; else ``seed`` (default 0) draws it from N(0, I).
        Without the encoder, ``seed`` has no effect.
        """
        return cls._synthesise(network, batch, None, **options)

    @classmethod
    def preview_multiple(cls, network: nn.Module) -> int:
        # The generator starts from the size over 2^n; previews keep that map at least 2x2 (instance norm).
        return 2 ** (network.G.num_upsamplings + 1)

    @classmethod
    def preview_input(cls, batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(batch, size=size, mode="nearest")  # label ids and one-hot maps stay exact

    @classmethod
    def infer_preview(cls, network: nn.Module, batch: torch.Tensor, state: dict[str, Any], refresh: bool,
                      **options: Any) -> torch.Tensor:
        """The generator at the (smaller) size of ``batch``, from a correspondingly smaller starting map."""
        return cls._synthesise(network, batch, (batch.shape[-2], batch.shape[-1]), **options)

    @classmethod
    def _synthesise(cls, network: SPADEInference, batch: torch.Tensor, size: tuple[int, int] | None,
                    **options: Any) -> torch.Tensor:
        cls.check_options(options)
        cfg = network.config
        device = next(network.G.parameters()).device
        label = _as_generator_input(batch.to(device), cfg, network.dont_care)
        style, seed = options.get("style"), options.get("seed")
        if style is not None and network.E is None:
            raise ConfigError("this SPADE model has no style encoder (trained without use_encoder): style images "
                              "cannot change it")
        z = None
        if network.E is not None:
            if style is not None:
                z = network.E(_style_tensor(style, device))[0]
                if z.shape[0] == 1 and label.shape[0] > 1:
                    z = z.expand(label.shape[0], -1)
            else:
                generator = torch.Generator().manual_seed(int(seed or 0))
                z = torch.randn(label.shape[0], cfg.z_dim, generator=generator).to(device)
        return network.G(label, z, size=size)

    @classmethod
    def resolve_split(cls, data_path: str | Path, split: str) -> Path | LabelFolders:
        """An official SPADE layout's split (``val_label/``..., ``annotations/validation/``...), else the split
        folder."""
        return official_label_folders(data_path, split) or split_folder(data_path, split)

    @classmethod
    def export_graphs(cls, network: nn.Module, card: Any) -> list[Any]:
        """``generator``: the one-hot label map (B, input_nc, H, W) (plus the style code ``z`` (B, z_dim) with the
        encoder) -> image at the native size; with the encoder also ``encoder``: a style image at the encoder's
        input size -> the code (its mean)."""
        from engine.infer.graphs import Call, ExportGraph, inference_copy

        cfg = network.config
        label = cls.example_input(cfg, card.size, batch_size=2)
        generator = inference_copy(network.G, cls.inference_batch_stats)
        label_note = ("one-hot label map (B, input_nc, H, W) at the native size, as engine.families.spade.family."
                      "label_input makes it (classes, then the instance-edge map when use_instance)")
        if network.E is None:
            return [ExportGraph("generator", generator, (label,), ("label",), ("output",), {"label": (0,)},
                                {"label": label_note, "output": "image (B, 3, H, W) in [-1, 1]"})]
        z = torch.randn(2, cfg.z_dim)
        encoder = inference_copy(network.E, cls.inference_batch_stats)
        side = encoder.input_size
        style = torch.rand(2, 3, side, side) * 2 - 1
        return [ExportGraph("generator", generator, (label, z), ("label", "z"), ("output",),
                            {"label": (0,), "z": (0,)},
                            {"label": label_note, "z": "style code (B, z_dim): the encoder's mean or N(0, I)",
                             "output": "image (B, 3, H, W) in [-1, 1]"}),
                ExportGraph("encoder", Call(encoder, lambda module, image: module(image)[0]), (style,), ("style",),
                            ("z",), {"style": (0,)},
                            {"style": f"style image (B, 3, {side}, {side}) in [-1, 1] (resize bilinearly first)",
                             "z": "style code (B, z_dim)"})]

    @classmethod
    def infer_graphs(cls, run: Any, network: nn.Module, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """:meth:`infer` with the compiled generator (and encoder): labels and the code are prepared in torch."""
        cls.check_options(options)
        cfg = network.config
        label = _as_generator_input(batch, cfg, network.dont_care)
        style, seed = options.get("style"), options.get("seed")
        if style is not None and network.E is None:
            raise ConfigError("this SPADE model has no style encoder (trained without use_encoder): style images "
                              "cannot change it")
        if network.E is None:
            return run("generator", label)
        if style is not None:
            image = _style_tensor(style, torch.device("cpu"))
            side = network.E.input_size
            if image.shape[-2:] != (side, side):
                image = F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False)
            z = run("encoder", image)
            if z.shape[0] == 1 and label.shape[0] > 1:
                z = z.expand(label.shape[0], -1)
        else:
            z = torch.randn(label.shape[0], cfg.z_dim, generator=torch.Generator().manual_seed(int(seed or 0)))
        return run("generator", label, z)

    @classmethod
    def evaluate(cls, session: Any, data: DataConfig, split_dir: Path, limit: int | None) -> dict[str, Any]:
        """L1 / PSNR / SSIM of outputs against the photos of a split (style code from seed 0 with the encoder)."""
        from engine.infer.evaluation import pixel_metrics

        return pixel_metrics(cls.eval_batches(session, data, split_dir, limit, samples=0))

    @classmethod
    def eval_batches(cls, session: Any, data: DataConfig, split_dir: Any, limit: int | None,
                     samples: int) -> Iterator[EvalBatch]:
        """Label maps (in palette colours) in, outputs (style seed 0) out, the photos as targets."""
        from engine.core.config import replace

        config = session.generator.config
        palette = load_palette(config.palette)
        data = replace(data, preprocess="resize_and_crop", load_size=session.size, flip=False, cache=False)
        dataset = LabelImages(split_dir, data, session.size, palette, config.use_instance, limit)
        for start in range(0, len(dataset), 4):
            photo, labels, edges = split_item(torch.stack([dataset[i] for i in
                                                           range(start, min(len(dataset), start + 4))]))
            output = session.translate_tensor(label_input(labels, config, session.generator.dont_care, edges), seed=0)
            colours = torch.stack([to_minus_one_one(torch.from_numpy(index_to_color(ids.numpy().astype(np.uint8),
                                                                                 palette)).permute(2, 0, 1))
                                   for ids in labels.cpu()])
            yield EvalBatch(output.cpu(), photo, colours)

    # --- benchmarks -----------------------------------------------------------------------------------
    @classmethod
    def example_input(cls, config: SPADEConfig, size: tuple[int, int], batch_size: int = 1) -> torch.Tensor:
        """A random one-hot label map of blocky regions (B, input_nc, H, W): the generator's own input."""
        generator = torch.Generator().manual_seed(0)
        coarse = torch.randint(config.n_classes, (batch_size, max(1, size[0] // 16), max(1, size[1] // 16)),
                               generator=generator)
        labels = F.interpolate(coarse[:, None].float(), size=size, mode="nearest")[:, 0].long()
        return label_input(labels, config, None)

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        """``labels/`` (index PNGs of rectangles, facades ids) and ``images/`` (class colours plus noise)."""
        rng = np.random.default_rng(0)
        palette = load_palette("facades")
        h, w = size
        for index in range(count):
            ids = np.zeros((h, w), np.uint8)
            for _ in range(6):
                top, left = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
                ids[top: top + int(rng.integers(2, h // 2 + 3)), left: left + int(rng.integers(2, w // 2 + 3))] = \
                    rng.integers(1, palette.n_classes)
            photo = index_to_color(ids, palette).astype(np.int16) + rng.integers(-20, 21, (h, w, 3))
            write_image(folder / "labels" / f"{index}.png", ids)
            write_image(folder / "images" / f"{index}.png", np.clip(photo, 0, 255).astype(np.uint8))
        return folder


def _as_generator_input(batch: torch.Tensor, cfg: SPADEConfig, dont_care: int | None) -> torch.Tensor:
    if batch.ndim != 4:
        raise ConfigError(f"spade expects label maps (B, 1, H, W) or (B, {cfg.input_nc}, H, W), got "
                          f"{tuple(batch.shape)}", value=tuple(batch.shape))
    channels = batch.shape[1]
    if channels == 1 and cfg.input_nc > 1:
        ids = batch[:, 0].round().long()
        return label_input(ids, cfg, dont_care)
    if channels == cfg.input_nc:
        return batch.float()
    if cfg.use_instance and channels == cfg.label_nc:  # one-hot without edges: class boundaries stand in
        ids = batch.argmax(1)
        return torch.cat([batch.float(), label_edges(ids).to(batch.device)], 1)
    raise ConfigError(f"spade expects label maps (B, 1, H, W) or (B, {cfg.input_nc}, H, W), got "
                      f"{tuple(batch.shape)}", value=tuple(batch.shape))


def _style_tensor(style: Any, device: torch.device) -> torch.Tensor:
    if isinstance(style, np.ndarray):
        if style.ndim != 3 or style.shape[2] < 3 or style.dtype != np.uint8:
            raise ConfigError(f"style image must be RGB uint8 (H, W, 3), got {style.dtype} {style.shape}",
                              value=style.shape)
        style = torch.from_numpy(np.ascontiguousarray(style[:, :, :3])).permute(2, 0, 1)[None]
    if not isinstance(style, torch.Tensor):
        raise ConfigError(f"style must be an RGB image or a tensor, got {type(style).__name__}")
    if style.ndim == 3:
        style = style[None]
    if style.dtype == torch.uint8:
        style = to_minus_one_one(style)
    return style.to(device).float()
