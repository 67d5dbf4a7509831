"""How a network runs at inference: no state touched, batch norm on the input's statistics or the running
ones (the convention :func:`engine.infer.graphs.inference_copy` bakes into exported graphs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def inference_mode(net: nn.Module, batch_stats: bool = True) -> Iterator[nn.Module]:
    """Evaluate ``net`` without touching its state or the global RNG.

    Dropout is off; batch norm normalises with the statistics of the current input (as the pix2pix
    reference does at test time) without updating its running averages, or with those running averages
    when ``batch_stats`` is False.
    """
    was_training = net.training
    batch_norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if batch_stats else []
    momenta = [m.momentum for m in batch_norms]
    counts = [None if m.num_batches_tracked is None else m.num_batches_tracked.clone() for m in batch_norms]
    net.eval()
    for module in batch_norms:
        module.train()
        module.momentum = 0.0
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            yield net
    finally:
        for module, momentum, count in zip(batch_norms, momenta, counts, strict=True):
            module.momentum = momentum
            if count is not None:
                module.num_batches_tracked.copy_(count)
        net.train(was_training)
