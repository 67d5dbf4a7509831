"""Tensor-in, tensor-out views of inference networks: what ONNX export and the compiled backends run.

A family's :meth:`~engine.families.base.Family.export_graphs` describes its inference network as one or more
:class:`ExportGraph` s (pix2pix: ``generator``; CycleGAN: ``AtoB`` and ``BtoA``; SPADE: ``generator`` and
``encoder``; StyleGAN2: ``mapping`` and ``synthesis``). Each graph computes exactly what the torch session
computes, including pix2pix's convention of batch norm with the input's own statistics at test time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ExportGraph:
    """One exportable graph.

    Attributes:
        name: the graph's name within its model (``generator``, ``AtoB``, ``mapping``...).
        module: a module in inference state whose ``forward`` takes ``inputs`` positionally.
        inputs: example inputs (their shapes are the defaults; the axes in ``dynamic`` may vary).
        input_names, output_names: names of the graph's inputs and outputs.
        dynamic: per input name, the axes that may vary (``{"input": (0, 2, 3)}``); the exporter keeps an axis
            static where the network needs it to be.
        notes: what a user of the exported file must know (input layout, ranges), stored in its metadata.
    """

    name: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: dict[str, tuple[int, ...]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


class BatchStatNorm(nn.Module):
    """Batch norm that always normalises with the statistics of the current batch (biased variance), never
    with running averages: what a ``_BatchNorm`` computes in training mode, as plain reductions that every
    runtime executes (ONNX ``BatchNormalization`` in training mode is not widely supported)."""

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        channels = norm.num_features
        self.weight = nn.Parameter(norm.weight.detach().clone()) if norm.affine else None
        self.bias = nn.Parameter(norm.bias.detach().clone()) if norm.affine else None
        self.shape = (1, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        centred = x - mean
        variance = (centred * centred).mean(dim=(0, 2, 3), keepdim=True)
        out = centred * torch.rsqrt(variance + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(self.shape) + self.bias.view(self.shape)
        return out


def inference_copy(network: nn.Module, batch_stats: bool) -> nn.Module:
    """A copy of ``network`` in eval mode that computes what :func:`engine.infer.mode.inference_mode` does:
    dropout off, and with ``batch_stats`` every 2-D batch norm normalising with the input's statistics."""
    clone = copy.deepcopy(network).eval()
    if batch_stats:
        _swap_batch_norms(clone)
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def _swap_batch_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, BatchStatNorm(child))
        else:
            _swap_batch_norms(child)


class Call(nn.Module):
    """Wrap a bound method or function of ``owner`` as a module's forward (e.g. a generator's ``mapping``)."""

    def __init__(self, owner: nn.Module, function: Any) -> None:
        super().__init__()
        self.owner = owner
        self.function = function

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.function(self.owner, *inputs)


class GraphsUnsupported(Exception):
    """An inference option the exported graphs cannot express (e.g. StyleGAN2's random noise)."""
