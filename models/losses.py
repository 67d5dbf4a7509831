"""GAN losses as pure functions, with thin :class:`torch.nn.Module` wrappers.

Every function takes raw discriminator outputs (logits / scores), never probabilities.

Modes:
    ``vanilla``: non-saturating binary cross-entropy with logits.
    ``lsgan``: least squares, targets 1 (real) and 0 (fake).
    ``hinge``: discriminator ``relu(1 - real) + relu(1 + fake)``; generator ``-fake``.
    ``wgan``: Wasserstein critic ``fake - real``; use with :func:`gradient_penalty` (WGAN-GP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss {mode!r}; choose one of {', '.join(GAN_MODES)}")


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, mode: str = "vanilla") -> torch.Tensor:
    """Loss for the discriminator given its outputs on real and on generated samples.

    Example:
        >>> z = torch.zeros(4)
        >>> round(discriminator_loss(z, z, "vanilla").item(), 4)  # 2 * ln 2 / 2
        0.6931
    """
    _check_mode(mode)
    if mode == "vanilla":
        loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return 0.5 * (loss_real + loss_fake)
    if mode == "lsgan":
        return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))
    if mode == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(fake: torch.Tensor, mode: str = "vanilla") -> torch.Tensor:
    """Adversarial loss for the generator given the discriminator's outputs on generated samples."""
    _check_mode(mode)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if mode == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    return -fake.mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad critic(x_hat)||_2 - 1)^2]`` on random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


class GANLoss(nn.Module):
    """Module form: ``loss(pred, target_is_real, for_discriminator)``.

    For the discriminator, call it twice (real with ``True``, fake with ``False``) and add;
    the halves sum to :func:`discriminator_loss` up to its 0.5 factor for vanilla/lsgan.
    """

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        _check_mode(mode)
        self.mode = mode

    def forward(self, pred: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if not for_discriminator:
            return generator_loss(pred, self.mode)
        if self.mode == "vanilla":
            target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
            return F.binary_cross_entropy_with_logits(pred, target)
        if self.mode == "lsgan":
            return F.mse_loss(pred, torch.full_like(pred, 1.0 if target_is_real else 0.0))
        if self.mode == "hinge":
            return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
        return -pred.mean() if target_is_real else pred.mean()
