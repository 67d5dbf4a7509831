"""CycleGAN (Zhu et al., 2017): two ResNet generators and two PatchGANs trained on unpaired domains.

``G_AB`` maps domain A to B and ``G_BA`` maps B to A. ``D_A`` tells real A images from generated ones
(``G_BA(b)``), ``D_B`` does the same for domain B. The generators minimise::

    G_A + G_B                                    adversarial (lsgan by default)
    + lambda_a |G_BA(G_AB(a)) - a| + lambda_b |G_AB(G_BA(b)) - b|      cycle_A, cycle_B
    + lambda_identity * (lambda_a |G_BA(a) - a| + lambda_b |G_AB(b) - b|)   idt_A, idt_B

Every loss name ends with the domain of the images it judges or reconstructs: ``G_A`` is the adversarial loss
of generated A images under ``D_A``, ``cycle_A`` reconstructs real A images, ``idt_A`` asks ``G_BA`` (whose
outputs are A images) to leave real A images alone.

The discriminators see generated images through history pools (:class:`engine.families.cyclegan.pool.ImagePool`) whose contents
and random generator are checkpointed, so a resumed run is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.config import (
    DataConfig,
    TrainConfig,
    check,
    check_choice,
    check_optimizer,
    check_positive,
    replace,
    setting,
)
from engine.core.errors import ConfigError
from engine.core.family_spec import InferenceOption
from engine.core.imageio import write_image
from engine.core.registry import register_family
from engine.data.augment import PairedAugment, to_minus_one_one
from engine.data.datasets import EpochSampler
from engine.families.base import Family
from engine.families.cyclegan.pool import ImagePool
from engine.families.cyclegan.tiling import pad_and_run, translate_tiled
from engine.families.cyclegan.unaligned import (
    EVAL_FALLBACK_LIMIT,
    ImageDomain,
    UnalignedImages,
    UnalignedSplit,
    unaligned_split,
)
from engine.infer.eval_batch import EvalBatch
from engine.infer.metrics import l1
from engine.infer.mode import inference_mode
from engine.train.common import autocast, center_crop, image_grid, make_adam, prepare_module
from engine.train.trainer import Trainer, set_requires_grad
from models.cycle_losses import cycle_loss, identity_loss
from models.layers import NORMS
from models.losses import discriminator_loss, generator_loss
from models.patchgan import PatchDiscriminator
from models.resnet_generator import UPSAMPLINGS, ResnetGenerator

CYCLEGAN_GAN_MODES = ("lsgan", "vanilla", "hinge")
DIRECTIONS = ("AtoB", "BtoA")
STRIDE = 4  # two stride-2 downsamplings in the ResNet generator
AUTO_TILE = 512
AUTO_TILE_ABOVE = 1024 * 1024  # pixels: larger images are tiled on the CPU when tile=0


@dataclass(frozen=True)
class CycleGANConfig:
    """Networks and loss weights of CycleGAN.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    in_channels: int = setting(3, "image channels of domain A (3 for RGB).")
    out_channels: int = setting(3, "image channels of domain B (3 for RGB).")
    ngf: int = setting(64, "base width of the generators.")
    ndf: int = setting(64, "base width of the discriminators.")
    n_blocks: int = setting(9, "residual blocks per generator (9 for 256 px crops, 6 for 128 px; chosen from "
                            "--size unless given).")
    norm: str = setting("instance", "``instance``, ``batch`` or ``none`` (all four networks).")
    upsampling: str = setting("transpose", "generator decoder: ``transpose`` (transposed convs, as in the "
                              "paper), ``resize`` (nearest x2 + conv, no checkerboard) or ``bilinear``.")
    n_layers_d: int = setting(3, "PatchGAN stride-2 layers (3 = 70x70 patches).")
    gan_mode: str = setting("lsgan", "adversarial loss: ``lsgan`` (paper), ``vanilla`` or ``hinge``.")
    lambda_a: float = setting(10.0, "weight of the cycle loss A->B->A.")
    lambda_b: float = setting(10.0, "weight of the cycle loss B->A->B.")
    lambda_identity: float = setting(0.5, "identity loss weight relative to the cycle weight of the same "
                                     "domain (0.5 gives 0.5 * lambda; 0 disables it); needs in_channels == "
                                     "out_channels.")
    pool_size: int = setting(50, "generated images kept per discriminator history pool (0 = no pool).")
    lr_g: float = setting(2e-4, "Adam learning rate of both generators.")
    lr_d: float = setting(2e-4, "Adam learning rate of both discriminators.")
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam betas (beta1,beta2) of all four networks.")

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "ngf", "ndf", "n_layers_d"):
            check_positive(name, getattr(self, name))
        check(int(self.n_blocks) == self.n_blocks and self.n_blocks >= 0, "n_blocks", self.n_blocks,
              "an integer >= 0 (6 or 9 usual)")
        check_choice("norm", self.norm, NORMS)
        check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        check_choice("gan_mode", self.gan_mode, CYCLEGAN_GAN_MODES)
        for name in ("lambda_a", "lambda_b", "lambda_identity"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check(int(self.pool_size) == self.pool_size and self.pool_size >= 0, "pool_size", self.pool_size,
              "an integer >= 0")
        if self.lambda_identity > 0:
            check(self.in_channels == self.out_channels, "lambda_identity", self.lambda_identity,
                  f"0 when in_channels ({self.in_channels}) != out_channels ({self.out_channels})")
        check_optimizer(self)


def _forward(net: Callable[[torch.Tensor], torch.Tensor], inputs: list[torch.Tensor],
             together: bool) -> list[torch.Tensor]:
    """``net`` on each input; in one concatenated call when ``together`` (exact for per-sample norms)."""
    if together and len(inputs) > 1:
        return list(net(torch.cat(inputs)).split([x.shape[0] for x in inputs]))
    return [net(x) for x in inputs]


def generator_losses(
    g_ab: Callable[[torch.Tensor], torch.Tensor],
    g_ba: Callable[[torch.Tensor], torch.Tensor],
    d_a: Callable[[torch.Tensor], torch.Tensor],
    d_b: Callable[[torch.Tensor], torch.Tensor],
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    config: CycleGANConfig,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The generators' loss terms for one batch; returns ``(losses, fake_a, fake_b)``.

    ``losses`` holds ``G_A``, ``G_B``, ``cycle_A``, ``cycle_B``, ``idt_A``, ``idt_B`` (0-dim, float32, with
    graph); their sum is the generator objective. Identity terms are zero tensors when disabled.

    Shape:
        real_a (B, in_channels, H, W), real_b (B, out_channels, H, W) in [-1, 1].
    """
    together = config.norm != "batch"  # batch norm would mix the statistics of the concatenated inputs
    use_identity = config.lambda_identity > 0
    if use_identity:
        fake_b, idt_b = _forward(g_ab, [real_a, real_b], together)
        fake_a, idt_a = _forward(g_ba, [real_b, real_a], together)
    else:
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    losses = {
        "G_A": generator_loss(d_a(fake_a).float(), config.gan_mode),
        "G_B": generator_loss(d_b(fake_b).float(), config.gan_mode),
        "cycle_A": cycle_loss(real_a.float(), rec_a.float(), config.lambda_a),
        "cycle_B": cycle_loss(real_b.float(), rec_b.float(), config.lambda_b),
    }
    if use_identity:
        losses["idt_A"] = identity_loss(real_a.float(), idt_a.float(), config.lambda_identity * config.lambda_a)
        losses["idt_B"] = identity_loss(real_b.float(), idt_b.float(), config.lambda_identity * config.lambda_b)
    else:
        zero = torch.zeros((), device=real_a.device)
        losses["idt_A"], losses["idt_B"] = zero, zero.clone()
    return losses, fake_a, fake_b


def discriminator_losses(
    d_a: Callable[[torch.Tensor], torch.Tensor],
    d_b: Callable[[torch.Tensor], torch.Tensor],
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    fake_b: torch.Tensor,
    config: CycleGANConfig,
) -> dict[str, torch.Tensor]:
    """``D_A`` (real A vs generated A) and ``D_B`` (real B vs generated B); pass detached, pooled fakes."""
    together = config.norm != "batch"
    out = {}
    for name, net, real, fake in (("D_A", d_a, real_a, fake_a), ("D_B", d_b, real_b, fake_b)):
        pred_real, pred_fake = _forward(net, [real, fake], together)
        out[name] = discriminator_loss(pred_real.float(), pred_fake.float(), config.gan_mode)
    return out


def check_size(size: tuple[int, int]) -> None:
    if size[0] % STRIDE or size[1] % STRIDE:
        raise ConfigError(f"size {size[0]}x{size[1]} must be a multiple of {STRIDE} for the ResNet generator "
                          f"(e.g. {max(STRIDE, size[0] // STRIDE * STRIDE)})", value=size)


class CycleGANTrainer(Trainer):
    """Both generators in one Adam optimizer (``G``), both discriminators in another (``D``)."""

    def __init__(self, config: CycleGANConfig, train: TrainConfig, data: DataConfig,
                 device: torch.device) -> None:
        super().__init__(config, train, data, device)
        check_size(train.size)
        if config.in_channels != 3 or config.out_channels != 3:
            raise ConfigError("CycleGAN trains on RGB images: in_channels and out_channels must be 3",
                              value=(config.in_channels, config.out_channels))
        self.dataset = UnalignedImages(data, train.size)
        self.sampler = EpochSampler(len(self.dataset), train.seed)
        self.augment = PairedAugment(train.size, data.flip, device, self.augment_generator)
        self.G_AB = CycleGAN.build_generator(config)
        self.G_BA = ResnetGenerator(config.out_channels, config.in_channels, config.ngf, config.n_blocks,
                                    config.norm, config.upsampling)
        self.D_A = PatchDiscriminator(config.in_channels, config.ndf, config.n_layers_d, config.norm)
        self.D_B = PatchDiscriminator(config.out_channels, config.ndf, config.n_layers_d, config.norm)
        self.nets = {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}
        self.fwd = {name: prepare_module(net, device, train) for name, net in self.nets.items()}
        generators = [*self.G_AB.parameters(), *self.G_BA.parameters()]
        discriminators = [*self.D_A.parameters(), *self.D_B.parameters()]
        self.optimizers = {"G": make_adam(generators, config.lr_g, config.betas, device),
                           "D": make_adam(discriminators, config.lr_d, config.betas, device)}
        self.base_lrs = {"G": config.lr_g, "D": config.lr_d}
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        self.pool_generator = torch.Generator().manual_seed(train.seed + 2)
        count = min(4, len(self.dataset.a), len(self.dataset.b))
        self.fixed_a = torch.stack([center_crop(self.dataset.a[i], train.size) for i in range(count)])
        self.fixed_b = torch.stack([center_crop(self.dataset.b[i], train.size) for i in range(count)])

    # --- data -------------------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A images in a shuffled epoch order (cycling through A), each with a random B image."""
        a, b = self.dataset.a, self.dataset.b
        indices = self.sampler.next_batch(self.train.batch_size)
        b_indices = torch.randint(len(b), (len(indices),), generator=self.augment_generator).tolist()
        real_a = self.augment([a[i % len(a)] for i in indices])
        real_b = self.augment([b[i] for i in b_indices])
        if self.device.type == "cuda" and self.train.channels_last:
            real_a = real_a.contiguous(memory_format=torch.channels_last)
            real_b = real_b.contiguous(memory_format=torch.channels_last)
        return real_a, real_b

    # --- optimisation ----------------------------------------------------------------------------------
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, fwd = self.model_config, self.fwd
        real_a, real_b = batch
        # Generators: fool both discriminators, reconstruct both cycles, keep in-domain images unchanged.
        set_requires_grad(self.D_A, False)
        set_requires_grad(self.D_B, False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with autocast(self.device, self.train):
            losses, fake_a, fake_b = generator_losses(fwd["G_AB"], fwd["G_BA"], fwd["D_A"], fwd["D_B"],
                                                      real_a, real_b, cfg)
        self.backward(sum(losses.values()))
        self.optimizer_step("G")
        # Discriminators: real images -> real; generated images, drawn through the history pools -> fake.
        set_requires_grad(self.D_A, True)
        set_requires_grad(self.D_B, True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        pooled_a = self.pool_a.query(fake_a.detach(), self.pool_generator)
        pooled_b = self.pool_b.query(fake_b.detach(), self.pool_generator)
        with autocast(self.device, self.train):
            d_losses = discriminator_losses(fwd["D_A"], fwd["D_B"], real_a, real_b, pooled_a, pooled_b, cfg)
        self.backward(d_losses["D_A"] + d_losses["D_B"])
        self.optimizer_step("D")
        return {name: value.detach() for name, value in {**d_losses, **losses}.items()}

    def sample_grid(self) -> np.ndarray:
        """Rows of ``real A | fake B | rec A`` and, after a gutter, ``real B | fake A | rec B``."""
        real_a = to_minus_one_one(self.fixed_a.to(self.device))
        real_b = to_minus_one_one(self.fixed_b.to(self.device))
        with inference_mode(self.G_AB), inference_mode(self.G_BA):
            fake_b, fake_a = self.G_AB(real_a).float(), self.G_BA(real_b).float()
            rec_a, rec_b = self.G_BA(fake_b).float(), self.G_AB(fake_a).float()
        left = image_grid([list(row) for row in zip(real_a, fake_b, rec_a, strict=True)])
        right = image_grid([list(row) for row in zip(real_b, fake_a, rec_b, strict=True)])
        gutter = np.full((left.shape[0], 6, 3), 255, dtype=np.uint8)
        return np.concatenate([left, gutter, right], axis=1)

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"pool_generator": self.pool_generator.get_state()}
        for name, pool in (("pool_A", self.pool_a), ("pool_B", self.pool_b)):
            tensors.update({f"{name}.{key}": value for key, value in pool.state_dict().items()})
        return tensors, {"pool_size": self.model_config.pool_size}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        self.pool_generator.set_state(tensors["pool_generator"].cpu())
        for name, pool in (("pool_A", self.pool_a), ("pool_B", self.pool_b)):
            pool.load_state_dict({key: tensors[f"{name}.{key}"] for key in ("images", "count")})


@register_family("cyclegan")
class CycleGAN(Family):
    """Unpaired translation both ways (horse <-> zebra): load an image of either domain, choose the direction."""

    config_cls = CycleGANConfig
    input_kind = "image"
    description = "two ResNet generators + PatchGANs with cycle consistency, for unpaired domains (A <-> B)"
    generator_key = "G_AB"
    resize_to_native = False  # fully convolutional: images keep their size (tiled when large)
    default_canvas_mode = "photo"  # the canvas holds a photo (imported, painted over in colour)
    layouts = ("unaligned", "paired")
    untrained_config = {"ngf": 16, "ndf": 16, "n_blocks": 6}
    inference_options = (
        InferenceOption("direction", "choice", "translate A -> B or B -> A", "AtoB", DIRECTIONS),
        InferenceOption("tile", "int", "tile size in pixels for large images (0: automatic)", 0),
    )

    @classmethod
    def build_generator(cls, config: CycleGANConfig) -> ResnetGenerator:
        """The A -> B generator."""
        return ResnetGenerator(config.in_channels, config.out_channels, config.ngf, config.n_blocks, config.norm,
                               config.upsampling)

    @classmethod
    def inference_network(cls, config: CycleGANConfig) -> nn.ModuleDict:
        """Both generators: ``G_AB`` (A -> B) and ``G_BA`` (B -> A)."""
        g_ba = ResnetGenerator(config.out_channels, config.in_channels, config.ngf, config.n_blocks, config.norm,
                               config.upsampling)
        return nn.ModuleDict({"G_AB": cls.build_generator(config), "G_BA": g_ba})

    @classmethod
    def inference_weights(cls, checkpoint: Any) -> dict[str, torch.Tensor]:
        weights = {}
        for name in ("G_AB", "G_BA"):
            weights.update({f"{name}.{key}": value for key, value in checkpoint.group(f"net.{name}").items()})
        return weights

    @classmethod
    def preview_multiple(cls, network: nn.Module) -> int:
        return STRIDE  # fully convolutional: a preview is the same pass on a smaller image

    @classmethod
    def infer(cls, network: nn.Module, batch: torch.Tensor, direction: str = "AtoB", tile: int = 0,
              **options: Any) -> torch.Tensor:
        """Translate (B, C, H, W) in [-1, 1] of any size with ``G_AB`` (``AtoB``) or ``G_BA`` (``BtoA``).

        Sizes are reflect-padded to a multiple of 4 and cropped back. ``tile`` > 0 translates images larger
        than ``tile`` pixels in overlapping tiles (:func:`engine.families.cyclegan.tiling.translate_tiled`); ``tile`` = 0 tiles
        with 512-pixel tiles on the CPU above 1024x1024 pixels and runs whole otherwise.
        """
        cls._check_options(direction, tile, options)
        generator = network["G_AB" if direction == "AtoB" else "G_BA"]
        height, width = batch.shape[-2:]
        if tile == 0 and batch.device.type == "cpu" and height * width > AUTO_TILE_ABOVE:
            tile = AUTO_TILE
        if tile == 0:
            return pad_and_run(generator, batch, STRIDE)
        return translate_tiled(generator, batch, tile=tile, overlap=tile_overlap(tile), stride_multiple=STRIDE)

    @classmethod
    def _check_options(cls, direction: str, tile: int, options: dict[str, Any]) -> None:
        cls.check_options({"direction": direction, **options})
        if int(tile) != tile or tile < 0:
            raise ConfigError(f"invalid tile {tile!r}: expected 0 (auto) or a size in pixels", value=tile)

    @classmethod
    def export_graphs(cls, network: nn.Module, card: Any) -> list[Any]:
        """``AtoB`` and ``BtoA``: image (B, C, H, W) in [-1, 1] -> image, batch, height and width dynamic."""
        from engine.infer.graphs import ExportGraph, inference_copy

        graphs = []
        for direction in DIRECTIONS:
            generator = network["G_AB" if direction == "AtoB" else "G_BA"]
            channels = generator.model[1].in_channels  # after the reflection pad
            example = torch.rand(2, channels, 64, 64) * 2 - 1
            notes = {"input": f"image (B, C, H, W) in [-1, 1]; H and W multiples of {STRIDE} (reflect-pad and "
                              "crop back otherwise)", "output": "image (B, C, H, W) in [-1, 1]"}
            graphs.append(ExportGraph(direction, inference_copy(generator, cls.inference_batch_stats), (example,),
                                      ("input",), ("output",), {"input": (0, 2, 3)}, notes))
        return graphs

    @classmethod
    def infer_graphs(cls, run: Any, network: nn.Module, batch: torch.Tensor, direction: str = "AtoB",
                     tile: int = 0, **options: Any) -> torch.Tensor:
        """:meth:`infer` with the compiled generator of ``direction`` (padding and tiling as there)."""
        cls._check_options(direction, tile, options)

        def generator(x: torch.Tensor) -> torch.Tensor:
            return run(direction, x)

        height, width = batch.shape[-2:]
        if tile == 0 and height * width > AUTO_TILE_ABOVE:
            tile = AUTO_TILE
        if tile == 0:
            return pad_and_run(generator, batch, STRIDE)
        return translate_tiled(generator, batch, tile=tile, overlap=tile_overlap(tile), stride_multiple=STRIDE)

    @classmethod
    def resolve_split(cls, data_path: str | Path, split: str) -> UnalignedSplit:
        return unaligned_split(data_path, split)

    @classmethod
    def evaluate(cls, session: Any, data: DataConfig, split_dir: Any, limit: int | None) -> dict[str, Any]:
        """Cycle-reconstruction L1 (on the [0, 1] scale) A -> B -> A and B -> A -> B at the training size.

        Without a test split (``testA``/``testB``) the training images are used, at most 100 unless
        ``limit`` says otherwise.
        """
        split, domains, counts = _eval_domains(split_dir, data, limit, session.size)
        result: dict[str, Any] = {}
        for domain, there, back in (("A", "AtoB", "BtoA"), ("B", "BtoA", "AtoB")):
            images, count = domains[domain], counts[domain]
            total = 0.0
            for start in range(0, count, 4):
                real = to_minus_one_one(torch.stack([images[i] for i in range(start, min(count, start + 4))]))
                reconstructed = session.translate_tensor(session.translate_tensor(real, direction=there),
                                                         direction=back)
                total += float(l1(reconstructed.cpu(), real).sum())
            result[f"images_{domain}"] = count
            result[f"cycle_L1_{domain}"] = total / max(1, count)
        result["folders"] = split.describe()
        return result

    @classmethod
    def eval_batches(cls, session: Any, data: DataConfig, split_dir: Any, limit: int | None,
                     samples: int) -> Iterator[EvalBatch]:
        """Per direction (group ``AtoB`` / ``BtoA``): real images in, translations out, and the real images of
        the other domain as targets (unpaired: distribution metrics only)."""
        _, domains, counts = _eval_domains(split_dir, data, limit, session.size)
        for source, target, direction in (("A", "B", "AtoB"), ("B", "A", "BtoA")):
            inputs, reals = domains[source], domains[target]
            count_in, count_real = counts[source], counts[target]
            for start in range(0, max(count_in, count_real), 4):
                real_in = _batch_minus_one_one(inputs, start, min(count_in, start + 4))
                output = None if real_in is None else session.translate_tensor(real_in, direction=direction).cpu()
                yield EvalBatch(output, _batch_minus_one_one(reals, start, min(count_real, start + 4)), real_in,
                                group=direction, paired=False)

    @classmethod
    def auto_config(cls, size: tuple[int, int], overrides: dict[str, Any]) -> CycleGANConfig:
        """9 residual blocks from 256 px up, 6 below (as in the paper), unless ``n_blocks`` is given."""
        return CycleGANConfig(**{"n_blocks": 9 if min(size) >= 256 else 6, **overrides})

    @classmethod
    def example_input(cls, config: CycleGANConfig, size: tuple[int, int], batch_size: int = 1) -> torch.Tensor:
        height, width = (-(-s // STRIDE) * STRIDE for s in size)
        return torch.rand(batch_size, config.in_channels, height, width) * 2 - 1

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        """Random RGB PNGs in ``trainA/`` and ``trainB/``."""
        rng = np.random.default_rng(0)
        for domain in ("trainA", "trainB"):
            for index in range(count):
                write_image(folder / domain / f"{index}.png",
                            rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8))
        return folder

    @classmethod
    def make_trainer(cls, config: CycleGANConfig, train: TrainConfig, data: DataConfig,
                     device: torch.device) -> CycleGANTrainer:
        return CycleGANTrainer(config, train, data, device)


def _eval_domains(split_dir: Any, data: DataConfig, limit: int | None, size: tuple[int, int],
                  ) -> tuple[UnalignedSplit, dict[str, ImageDomain], dict[str, int]]:
    """The evaluation split's domains A and B (after ``data.direction``) at ``size``, and how many images of each
    to use: all, ``limit``, or at most 100 training images when there is no test split."""
    split = split_dir if isinstance(split_dir, UnalignedSplit) else unaligned_split(split_dir, "val")
    if split.fallback and limit is None:
        limit = EVAL_FALLBACK_LIMIT
    folders = {"A": split.folder_a, "B": split.folder_b}
    if data.direction == "BtoA":
        folders = {"A": split.folder_b, "B": split.folder_a}
    data = replace(data, preprocess="resize_and_crop", load_size=size, flip=False, cache=False)
    domains = {name: ImageDomain(folder, data, size, cache=False) for name, folder in folders.items()}
    counts = {name: len(d) if limit is None else min(limit, len(d)) for name, d in domains.items()}
    return split, domains, counts


def _batch_minus_one_one(images: ImageDomain, start: int, stop: int) -> torch.Tensor | None:
    """Images ``start:stop`` of a domain as a batch in [-1, 1] (None when the range is empty)."""
    return to_minus_one_one(torch.stack([images[i] for i in range(start, stop)])) if start < stop else None


def tile_overlap(tile: int) -> int:
    """Overlap of neighbouring tiles: a quarter of the tile (at most 128 px), a multiple of the stride."""
    overlap = max(16, min(128, tile // 4))
    return min(overlap, tile // 2) // STRIDE * STRIDE
