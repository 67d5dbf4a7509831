"""A toy image-to-image family in one package: its network, config, trainer and family, nothing else.

It exists to prove the family contract (tests/engine/test_toy_family.py): importing this package registers
``toy``, and the CLI trains it and translates with it like a built-in family. The network is a two-layer
convolution trained with an L1 loss only (no discriminator): small enough to train in a few CPU steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import DataConfig, TrainConfig, check_optimizer, check_positive, setting
from engine.core.imageio import write_image
from engine.core.registry import register_family
from engine.data.augment import PairedAugment, to_minus_one_one
from engine.data.datasets import EpochSampler, PairedImages, split_folder
from engine.families.base import Family
from engine.infer.mode import inference_mode
from engine.train.common import image_grid, make_adam
from engine.train.trainer import Trainer


class ToyNet(nn.Module):
    """RGB in [-1, 1] -> RGB in [-1, 1]: a 3x3 convolution, ReLU, a 1x1 convolution, tanh."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


@dataclass(frozen=True)
class ToyConfig:
    """The toy network and its Adam settings (it has no discriminator: ``lr_d`` goes unused)."""

    channels: int = setting(8, "hidden channels of the toy network.")
    lr_g: float = setting(2e-4, "Adam learning rate of the network.")
    lr_d: float = setting(2e-4, "unused (no discriminator).")
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam betas (beta1,beta2).")

    def __post_init__(self) -> None:
        check_positive("channels", self.channels)
        check_optimizer(self)


class ToyTrainer(Trainer):
    """L1 between the network's answer to A and B, on aligned or paired data."""

    def __init__(self, config: ToyConfig, train: TrainConfig, data: DataConfig, device: torch.device) -> None:
        super().__init__(config, train, data, device)
        self.dataset = PairedImages(split_folder(data.path, "train"), data, train.size)
        self.sampler = EpochSampler(len(self.dataset), train.seed)
        self.augment = PairedAugment(train.size, data.flip, device, self.augment_generator)
        self.G = Toy.build_generator(config).to(device)
        self.nets = {"G": self.G}
        self.optimizers = {"G": make_adam(self.G.parameters(), config.lr_g, config.betas, device)}
        self.base_lrs = {"G": config.lr_g}

    def next_batch(self) -> torch.Tensor:
        return self.augment([self.dataset[i] for i in self.sampler.next_batch(self.train.batch_size)])

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss = F.l1_loss(self.G(batch[:, :3]), batch[:, 3:])
        self.backward(loss)
        self.optimizer_step("G")
        return {"L1": loss.detach()}

    def sample_grid(self) -> np.ndarray:
        pair = to_minus_one_one(self.dataset[0][None].to(self.device))
        with inference_mode(self.G):
            output = self.G(pair[:, :3])
        return image_grid([[pair[0, :3], output[0], pair[0, 3:]]])


@register_family("toy")
class Toy(Family):
    """A two-layer convolution from A to B."""

    config_cls = ToyConfig
    description = "toy two-layer convolution (tests the family contract)"
    layouts = ("aligned", "paired")
    untrained_config = {"channels": 4}

    @classmethod
    def build_generator(cls, config: ToyConfig) -> ToyNet:
        return ToyNet(config.channels)

    @classmethod
    def make_trainer(cls, config: ToyConfig, train: TrainConfig, data: DataConfig,
                     device: torch.device) -> ToyTrainer:
        return ToyTrainer(config, train, data, device)

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        rng = np.random.default_rng(0)
        for index in range(count):
            write_image(folder / f"{index}.png", rng.integers(0, 256, (size[0], size[1] * 2, 3), dtype=np.uint8))
        return folder
