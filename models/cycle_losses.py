"""Reconstruction losses of CycleGAN (Zhu et al., 2017) as pure functions.

The full generator objective for the two mappings ``G: A -> B`` and ``F: B -> A`` is::

    adv(D_B(G(a))) + adv(D_A(F(b)))
    + cycle_loss(a, F(G(a)), lambda_a) + cycle_loss(b, G(F(b)), lambda_b)
    + identity_loss(b, G(b), 0.5 * lambda_a) + identity_loss(a, F(a), 0.5 * lambda_b)

with ``lambda = 10`` in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor, weight: float) -> torch.Tensor:
    """Cycle-consistency loss ``weight * mean|real - reconstructed|`` (L1).

    Example:
        >>> cycle_loss(torch.zeros(2), torch.tensor([1.0, -3.0]), 10.0)
        tensor(20.)
    """
    return weight * F.l1_loss(reconstructed, real)


def identity_loss(real: torch.Tensor, same: torch.Tensor, weight: float) -> torch.Tensor:
    """Identity loss ``weight * mean|real - same|`` (L1), where ``same`` is e.g. ``G_AB(b)`` for a real ``b``.

    It keeps a generator from changing images that already belong to its target domain (it preserves
    colour composition). CycleGAN weights it relative to the cycle loss: pass ``0.5 * lambda`` where
    ``lambda`` is the cycle weight of the domain (the reference's ``lambda_identity = 0.5``).
    """
    return weight * F.l1_loss(same, real)
