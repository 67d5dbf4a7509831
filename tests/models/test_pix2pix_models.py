"""U-Net and PatchGAN shapes, initialisation and the GAN losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import GANLoss, discriminator_loss, generator_loss, gradient_penalty
from models.patchgan import PatchDiscriminator, patchgan_receptive_field
from models.unet import UNetGenerator


@pytest.mark.parametrize(("depth", "size"), [(5, (32, 32)), (6, (64, 128)), (7, (128, 128)), (5, (96, 64))])
def test_unet_shapes_incl_non_square(depth, size):
    net = UNetGenerator(3, 2, depth=depth, ngf=4)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)
    assert out.abs().max() <= 1.0


def test_unet_256_parameter_count_and_bad_size():
    net = UNetGenerator(3, 3, depth=8, ngf=64)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(54.41e6, rel=1e-3)  # "54.4 M" of U-Net-256
    with pytest.raises(ValueError, match="divisible by 256"):
        net(torch.zeros(1, 3, 200, 256))


def test_weights_initialised_normal_002():
    net = UNetGenerator(3, 3, depth=6, ngf=32, norm="batch")
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002


def test_patchgan_receptive_field_and_output():
    assert patchgan_receptive_field(3) == 70
    assert patchgan_receptive_field(1) == 16
    out = PatchDiscriminator(6, ndf=8, n_layers=3)(torch.randn(1, 6, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    # One output logit depends on exactly a 70x70 window of the input.
    d = PatchDiscriminator(1, ndf=4, n_layers=3, norm="none").eval()
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    d(x)[0, 0, 5, 5].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    assert rows.max() - rows.min() + 1 <= 70


def test_losses_against_hand_computed_values():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected_vanilla = 0.5 * ((softplus(-2) + softplus(0)) / 2 + (softplus(-1) + softplus(1)) / 2)
    assert discriminator_loss(real, fake, "vanilla").item() == pytest.approx(expected_vanilla, rel=1e-6)
    assert generator_loss(fake, "vanilla").item() == pytest.approx((softplus(1) + softplus(-1)) / 2, rel=1e-6)
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5 * ((1 + 1) / 2 + (1 + 1) / 2))
    assert generator_loss(fake, "lsgan").item() == pytest.approx((4 + 0) / 2)
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert generator_loss(fake, "hinge").item() == pytest.approx(0.0)
    assert discriminator_loss(real, fake, "wgan").item() == pytest.approx(0.0 - 1.0)
    module = GANLoss("lsgan")
    assert module(real, True).item() == pytest.approx(1.0)
    assert module(fake, False).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(fake, "bce")


def test_gradient_penalty_of_linear_critic():
    # critic(x) = sum(w * x) has gradient w everywhere: penalty = weight * (||w|| - 1)^2.
    w = torch.full((1, 1, 2, 2), 1.0)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    gp = gradient_penalty(critic, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (2.0 - 1.0) ** 2)


def test_unet_preview_equals_forward_at_native_size_and_accepts_quarter_sizes():
    net = UNetGenerator(3, 3, depth=6, ngf=4).eval()
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        assert torch.equal(net.preview(x), net(x))
        for size in ((32, 32), (16, 16), (16, 48)):  # half and quarter of the native stride, non-square
            out = net.preview(torch.randn(1, 3, *size))
            assert out.shape == (1, 3, *size) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="divisible by 16"):
        net.preview(torch.zeros(1, 3, 24, 24))
    with pytest.raises(ValueError, match="divisible by 64"):
        net(torch.zeros(1, 3, 32, 32))  # the full pass stays strict


def test_unet_preview_deep_feature_cache_reuses_stored_features():
    from models.unet import DeepFeatureCache

    net = UNetGenerator(3, 3, depth=6, ngf=4).eval()
    first, second = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    cache = DeepFeatureCache(side=4)
    with torch.no_grad():
        assert torch.allclose(net.preview(first, cache), net.preview(first), atol=1e-6)  # storing changes nothing
        (stored,) = cache.stored.values()
        assert max(stored.shape[-2:]) <= 4
        cache.reuse = True
        assert torch.allclose(net.preview(first, cache), net.preview(first), atol=1e-6)
        reused, fresh = net.preview(second, cache), net.preview(second)
        assert not torch.allclose(reused, fresh)  # deep features came from ``first``
        cache.reuse = False
        assert torch.allclose(net.preview(second, cache), fresh, atol=1e-6)
