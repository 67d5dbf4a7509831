"""StyleGAN2 networks and losses on tiny CPU-sized models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.stylegan2 import (
    Discriminator,
    EqualConv2d,
    EqualLinear,
    Generator,
    MappingNetwork,
    MinibatchStdDev,
    ModulatedConv2d,
    d_logistic_loss,
    fir_kernel,
    g_nonsaturating_loss,
    path_length_penalty,
    r1_penalty,
    upsample2d,
)

RES, Z_DIM, W_DIM, BASE, CMAX = 32, 32, 32, 1024, 64


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def gen() -> Generator:
    return Generator(Z_DIM, W_DIM, RES, mapping_layers=2, channel_base=BASE, channel_max=CMAX).eval()


@pytest.fixture
def disc() -> Discriminator:
    return Discriminator(RES, channel_base=BASE, channel_max=CMAX)


def _set_noise_strength(g: Generator, value: float) -> None:
    with torch.no_grad():
        for layer in g.synthesis_network.layers():
            layer.noise_strength.fill_(value)


def test_equal_linear_runtime_scaling() -> None:
    layer = EqualLinear(64, 8, lr_mul=0.01, bias_init=1.0)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.15)  # N(0, 1) / lr_mul
    effective = layer.effective_weight()
    assert effective.std().item() == pytest.approx(1 / 64**0.5, rel=0.15)
    out = layer(torch.zeros(3, 64))
    torch.testing.assert_close(out, torch.ones(3, 8))  # effective bias equals bias_init


def test_equal_conv_downsamples_and_keeps_size() -> None:
    x = torch.randn(2, 4, 16, 16)
    assert EqualConv2d(4, 6, 3)(x).shape == (2, 6, 16, 16)
    assert EqualConv2d(4, 6, 3, down=True)(x).shape == (2, 6, 8, 8)
    assert EqualConv2d(4, 6, 1, down=True)(x).shape == (2, 6, 8, 8)


def test_upsample_preserves_constant_image() -> None:
    x = torch.full((1, 2, 8, 8), 3.0)
    up = upsample2d(x, fir_kernel(gain=4.0))
    assert up.shape == (1, 2, 16, 16)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full((1, 2, 12, 12), 3.0))


def test_demodulation_keeps_unit_variance() -> None:
    conv = ModulatedConv2d(64, 64, 3, W_DIM, demodulate=True)
    x = torch.randn(4, 64, 32, 32)
    w = torch.randn(4, W_DIM) * torch.tensor([0.5, 1.0, 3.0, 10.0])[:, None]  # styles of very different scale
    with torch.no_grad():
        y = conv(x, w)
        plain = ModulatedConv2d(64, 64, 3, W_DIM, demodulate=False)(x, w)
    assert y.shape == (4, 64, 32, 32)
    for sample in y[..., 1:-1, 1:-1]:  # away from zero padding
        assert 0.8 < sample.std().item() < 1.25
    spread = plain[..., 1:-1, 1:-1].flatten(1).std(dim=1)
    assert spread.max() / spread.min() > 1.5  # without demodulation the styles' scale leaks through


def test_upsampling_modulated_conv_is_style_scale_invariant() -> None:
    # Interpolating white noise lowers its variance (to about 0.4 here, as in the paper's design), but
    # demodulation still removes the styles' scale.
    conv = ModulatedConv2d(64, 32, 3, W_DIM, demodulate=True, up=True)
    x = torch.randn(4, 64, 16, 16)
    w = torch.randn(4, W_DIM) * torch.tensor([0.5, 1.0, 3.0, 10.0])[:, None]
    with torch.no_grad():
        y = conv(x, w)
    assert y.shape == (4, 32, 32, 32)
    spread = y[..., 2:-2, 2:-2].flatten(1).std(dim=1)
    assert spread.max() / spread.min() < 1.15
    assert 0.4 < spread.mean().item() < 1.25


def test_modulated_conv_matches_per_sample_conv() -> None:
    conv = ModulatedConv2d(5, 7, 3, W_DIM)
    x, w = torch.randn(3, 5, 8, 8), torch.randn(3, W_DIM)
    weights = conv.modulated_weight(conv.affine(w))
    expected = torch.cat([nn.functional.conv2d(x[i : i + 1], weights[i], padding=1) for i in range(3)])
    torch.testing.assert_close(conv(x, w), expected)


@pytest.mark.parametrize("up", [False, True])
def test_batched_modulated_conv_equals_one_sample_at_a_time(up: bool) -> None:
    # A batch takes the shared-convolution path, a single sample the grouped one: same result.
    conv = ModulatedConv2d(6, 4, 3, W_DIM, up=up)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, W_DIM)
    with torch.no_grad():
        singles = torch.cat([conv(x[i : i + 1], w[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(conv(x, w), singles, atol=1e-5, rtol=1e-4)


def test_generator_and_discriminator_shapes(gen: Generator, disc: Discriminator) -> None:
    z = torch.randn(4, Z_DIM)
    ws = gen.mapping(z)
    assert gen.num_ws == 2 * 5 - 2
    assert ws.shape == (4, gen.num_ws, W_DIM)
    img = gen.synthesis(ws)
    assert img.shape == (4, 3, RES, RES)
    assert gen(z).shape == (4, 3, RES, RES)
    logits = disc(img)
    assert logits.shape == (4, 1)
    assert torch.isfinite(logits).all()
    assert disc(torch.randn(3, 3, RES, RES)).shape == (3, 1)  # batch not divisible by mbstd group


def test_bad_inputs_raise(gen: Generator, disc: Discriminator) -> None:
    with pytest.raises(ValueError, match="img_resolution"):
        Generator(Z_DIM, W_DIM, 48)
    with pytest.raises(ValueError, match="ws must have shape"):
        gen.synthesis(torch.randn(2, 3, W_DIM))
    with pytest.raises(ValueError, match="noise_mode"):
        gen.synthesis(gen.mapping(torch.randn(2, Z_DIM)), noise_mode="sometimes")
    with pytest.raises(ValueError, match="images must have shape"):
        disc(torch.randn(2, 3, 64, 64))


def test_noise_modes_control_determinism(gen: Generator) -> None:
    ws = gen.mapping(torch.randn(2, Z_DIM))
    with torch.no_grad():
        # Noise strength starts at zero: random noise has no effect.
        torch.testing.assert_close(gen.synthesis(ws, "random"), gen.synthesis(ws, "random"))
        _set_noise_strength(gen, 0.5)
        torch.testing.assert_close(gen.synthesis(ws, "const"), gen.synthesis(ws, "const"))
        assert not torch.allclose(gen.synthesis(ws, "random"), gen.synthesis(ws, "random"))
        assert not torch.allclose(gen.synthesis(ws, "const"), gen.synthesis(ws, "none"))


def test_w_avg_tracks_mapping_output() -> None:
    mapping = MappingNetwork(Z_DIM, W_DIM, num_layers=2, w_avg_beta=0.5)
    z = torch.randn(16, Z_DIM)
    mapping(z)
    assert torch.count_nonzero(mapping.w_avg) == 0  # no update unless asked
    for _ in range(30):
        w = mapping(z, update_w_avg=True)
    torch.testing.assert_close(mapping.w_avg, w.mean(dim=0))


def test_w_avg_update_under_bf16_autocast_keeps_fp32_average() -> None:
    """Training with ``--cpu-bf16`` maps under autocast: the bf16 batch mean must still land in the fp32 buffer."""
    mapping = MappingNetwork(Z_DIM, W_DIM, num_layers=2, w_avg_beta=0.5)
    z = torch.randn(4, Z_DIM, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        w = mapping(z, update_w_avg=True)
    assert w.dtype == torch.bfloat16 and mapping.w_avg.dtype == torch.float32
    torch.testing.assert_close(mapping.w_avg, w.float().mean(dim=0) * 0.5)  # lerp from zeros, beta 0.5


def test_truncation_psi_zero_gives_w_avg_image(gen: Generator) -> None:
    with torch.no_grad():
        gen.mapping_network.w_avg.normal_()
        ws = gen.mapping(torch.randn(3, Z_DIM), psi=0.0)
        torch.testing.assert_close(ws, gen.w_avg.expand(3, gen.num_ws, -1))
        avg_img = gen.synthesis(gen.w_avg.expand(1, gen.num_ws, -1), "const")
        img = gen(torch.randn(3, Z_DIM), psi=0.0, noise_mode="const")
    torch.testing.assert_close(img, avg_img.expand(3, -1, -1, -1), atol=1e-5, rtol=1e-4)


def test_truncation_cutoff_only_touches_early_layers(gen: Generator) -> None:
    z = torch.randn(2, Z_DIM)
    full = gen.mapping(z)
    cut = gen.mapping(z, psi=0.0, cutoff=3)
    torch.testing.assert_close(cut[:, :3], gen.w_avg.expand(2, 3, -1))
    torch.testing.assert_close(cut[:, 3:], full[:, 3:])


def test_mix_styles(gen: Generator) -> None:
    ws1, ws2 = gen.mapping(torch.randn(2, Z_DIM)), gen.mapping(torch.randn(2, Z_DIM))
    mixed = gen.mix_styles(ws1, ws2, 2, 5)
    torch.testing.assert_close(mixed[:, 2:5], ws2[:, 2:5])
    torch.testing.assert_close(mixed[:, :2], ws1[:, :2])
    torch.testing.assert_close(mixed[:, 5:], ws1[:, 5:])
    with torch.no_grad():
        full = gen.synthesis(gen.mix_styles(ws1, ws2, 0, gen.num_ws), "const")
        torch.testing.assert_close(full, gen.synthesis(ws2, "const"))
        assert not torch.allclose(gen.synthesis(mixed, "const"), full)


def test_modulation_weights_shape(gen: Generator) -> None:
    layers = gen.synthesis_network.layers()
    assert len(layers) == gen.num_ws - 1
    all_weights = gen.modulation_weights()
    assert all_weights.shape == (sum(layer.conv.in_channels for layer in layers), W_DIM)
    first_two = gen.modulation_weights((0, 2))
    assert first_two.shape == (layers[0].conv.in_channels + layers[1].conv.in_channels, W_DIM)
    torch.testing.assert_close(first_two[: layers[0].conv.in_channels], layers[0].conv.affine.effective_weight())
    with pytest.raises(ValueError, match="layer_range"):
        gen.modulation_weights((3, 3))


def test_minibatch_std_adds_channels() -> None:
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStdDev(group_size=4, num_channels=2)(x)
    assert y.shape == (8, 8, 4, 4)
    torch.testing.assert_close(y[:, :6], x)
    same = MinibatchStdDev(4, 1)(torch.ones(4, 6, 4, 4))
    assert same[:, 6].abs().max() < 1e-3  # identical samples: zero spread
    assert (y[:, 6:] > 0).all()


def test_logistic_losses() -> None:
    zeros = torch.zeros(4, 1)
    assert d_logistic_loss(zeros, zeros).item() == pytest.approx(2 * 0.693147, rel=1e-5)
    assert g_nonsaturating_loss(zeros).item() == pytest.approx(0.693147, rel=1e-5)
    assert d_logistic_loss(torch.full((4, 1), 10.0), torch.full((4, 1), -10.0)).item() < 1e-3


def test_r1_penalty(disc: Discriminator) -> None:
    real = torch.randn(4, 3, RES, RES, requires_grad=True)
    penalty = r1_penalty(disc(real), real)
    assert penalty.ndim == 0 and penalty.item() > 0
    penalty.backward()
    assert disc.from_rgb.weight.grad is not None  # differentiable w.r.t. the discriminator

    constant = nn.Linear(1, 1)
    logits = constant(torch.ones(4, 1)) + 0 * real.sum(dim=(1, 2, 3))[:, None]
    assert r1_penalty(logits, real).item() == 0.0
    assert r1_penalty(constant(torch.ones(4, 1)), real).item() == 0.0  # logits independent of the images
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(disc(real.detach()), real.detach())


def test_path_length_penalty(gen: Generator) -> None:
    ws = gen.mapping(torch.randn(2, Z_DIM)).detach().requires_grad_(True)
    img = gen.synthesis(ws, "const")
    penalty, new_mean, lengths = path_length_penalty(img, ws, 0.0, decay=0.01)
    assert lengths.shape == (2,) and (lengths > 0).all()
    torch.testing.assert_close(new_mean, 0.01 * lengths.mean())
    assert penalty.item() > 0
    penalty.backward()
    assert gen.synthesis_network.blocks[0].const.grad is not None
