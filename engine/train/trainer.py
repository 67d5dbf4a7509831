"""What a family's trainer is: per-run networks, optimizers and data, driven one ``train_step`` at a time by
:mod:`engine.train.training` (several processes and mixed precision are applied here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.config import DataConfig, TrainConfig
from engine.train.common import Precision
from engine.train.distributed import DistContext


class Trainer:
    """Per-run training state of one family: networks, optimizers, data and one ``train_step``.

    The shared loop in :mod:`engine.train.training` drives it; subclasses fill ``nets`` and ``optimizers`` and
    implement :meth:`next_batch`, :meth:`train_step` and :meth:`sample_grid`.
    """

    def __init__(self, model_config: Any, train: TrainConfig, data: DataConfig, device: torch.device) -> None:
        self.model_config, self.train, self.data, self.device = model_config, train, data, device
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: dict[str, float] = {}
        self.augment_generator = torch.Generator().manual_seed(train.seed + 1)
        self.precision = Precision(device, train.amp, cpu_bf16=train.cpu_bf16)
        self.dist = DistContext()  # the other training processes, if any (engine.train.distributed sets it)

    # --- data -----------------------------------------------------------------------------------------
    # Subclasses set ``dataset`` (with a ``describe()``) and ``sampler`` (an EpochSampler) in __init__.
    dataset: Any = None
    sampler: Any = None

    def next_batch(self) -> Any:
        raise NotImplementedError

    def sampler_state(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_sampler_state(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)

    @property
    def epochs_done(self) -> float:
        return self.sampler.epochs_done

    def describe_data(self) -> dict[str, Any]:
        return {**self.dataset.describe(), "size": f"{self.train.size[0]}x{self.train.size[1]}"}

    @property
    def global_batch_size(self) -> int:
        """Images per step over all training processes."""
        return self.train.batch_size * self.dist.world_size

    # --- optimisation ----------------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled when training in fp16)."""
        self.precision.backward(loss)

    def optimizer_step(self, name: str) -> None:
        """Apply optimizer ``name``: gradients averaged over the training processes, unscaled for fp16."""
        optimizer = self.optimizers[name]
        self.dist.average_gradients(optimizer)
        self.precision.step(optimizer)

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One D and one G update; returns 0-dim loss tensors (not synced to the host)."""
        raise NotImplementedError

    def sample_grid(self) -> np.ndarray:
        """An RGB uint8 grid showing the current generator on fixed examples."""
        raise NotImplementedError

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Family-specific state to checkpoint (tensors, JSON)."""
        return {}, {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def set_lr_factor(self, factor: float) -> None:
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.base_lrs[name] * factor


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for parameter in net.parameters():
        parameter.requires_grad_(flag)
