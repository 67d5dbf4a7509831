"""SPADE / GauGAN networks and losses on tiny synthetic tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from models.spade import (
    SPADE,
    ConvEncoder,
    MultiscaleDiscriminator,
    SPADEGenerator,
    SPADEResBlock,
    VGGPerceptualLoss,
    feature_matching_loss,
    kl_divergence,
    multiscale_discriminator_loss,
    multiscale_generator_loss,
    reparameterize,
)

LABELS = 4


def one_hot_labels(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    classes = torch.randint(0, LABELS, (batch, height, width), generator=g)
    return torch.nn.functional.one_hot(classes, LABELS).permute(0, 3, 1, 2).float()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_spade_shape_non_square_and_label_resized(norm: str) -> None:
    spade = SPADE(8, LABELS, hidden=16, param_free_norm=norm)
    x = torch.randn(2, 8, 12, 20)
    out = spade(x, one_hot_labels(2, 48, 80, seed=1))
    assert out.shape == x.shape


def test_spade_modulation_depends_on_label_map() -> None:
    spade = SPADE(8, LABELS, hidden=16)
    with torch.no_grad():  # larger gamma/beta than the N(0, 0.02) init so the effect is clear
        spade.gamma.weight.normal_(0, 0.5)
        spade.beta.weight.normal_(0, 0.5)
    x = torch.randn(2, 8, 16, 16)
    a, b = one_hot_labels(2, 16, 16, seed=1), one_hot_labels(2, 16, 16, seed=2)
    out_a = spade(x, a)
    assert torch.equal(out_a, spade(x, a.clone()))
    assert (out_a - spade(x, b)).abs().max() > 1e-2


def test_instance_norm_erases_a_global_shift_and_batch_norm_at_inference_keeps_it() -> None:
    """Why a style code needs ``param_free_norm="batch"``: a per-image, per-channel shift of the features
    (what a code mostly sets) vanishes under instance norm but survives running-statistics batch norm."""
    x, label = torch.randn(1, 8, 16, 16), one_hot_labels(1, 16, 16, seed=1)
    shift = torch.randn(1, 8, 1, 1)
    instance = SPADE(8, LABELS, hidden=16, param_free_norm="instance")
    assert torch.allclose(instance(x, label), instance(x + shift, label), atol=1e-4)
    batch = SPADE(8, LABELS, hidden=16, param_free_norm="batch")
    batch(torch.randn(4, 8, 16, 16), one_hot_labels(4, 16, 16, seed=2))  # training updates running stats
    batch.eval()
    assert (batch(x, label) - batch(x + shift, label)).abs().mean() > 0.1


def test_spade_rejects_unknown_norm() -> None:
    with pytest.raises(ValueError, match="param_free_norm"):
        SPADE(8, LABELS, param_free_norm="group")


def test_resblock_shapes_and_shortcut() -> None:
    label = one_hot_labels(2, 16, 24, seed=1)
    same = SPADEResBlock(8, 8, LABELS, hidden=16)
    wider = SPADEResBlock(8, 16, LABELS, hidden=16)
    assert not same.learned_shortcut and wider.learned_shortcut
    assert wider.conv_s.bias is None
    x = torch.randn(2, 8, 8, 12)
    assert same(x, label).shape == (2, 8, 8, 12)
    assert wider(x, label).shape == (2, 16, 8, 12)


def test_spectral_norm_on_convs_only_when_asked() -> None:
    block = SPADEResBlock(8, 16, LABELS, spectral=True, hidden=16)
    for conv in (block.conv_0, block.conv_1, block.conv_s):
        assert parametrize.is_parametrized(conv, "weight")
    plain = SPADEResBlock(8, 16, LABELS, spectral=False, hidden=16)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())

    disc = MultiscaleDiscriminator(LABELS + 3, ndf=8, n_layers=3, num_scales=2, spectral=True)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 * 4
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    disc_plain = MultiscaleDiscriminator(LABELS + 3, ndf=8, n_layers=3, spectral=False)
    assert not any(parametrize.is_parametrized(m) for m in disc_plain.modules())


def test_weights_initialised_small() -> None:
    block = SPADEResBlock(8, 8, LABELS, spectral=False, hidden=16)
    weights = torch.cat([block.conv_0.weight.flatten(), block.norm_0.shared[0].weight.flatten()])
    assert 0.01 < weights.std().item() < 0.03
    assert block.conv_0.bias.abs().max() == 0


@pytest.mark.parametrize(("mode", "size"), [("normal", (32, 64)), ("more", (128, 64))])
def test_generator_shape_and_range(mode: str, size: tuple[int, int]) -> None:
    gen = SPADEGenerator(LABELS, out_channels=3, ngf=8, size=size, num_upsampling_layers=mode, hidden=16)
    n = {"normal": 5, "more": 6}[mode]
    assert gen.num_upsamplings == n
    assert gen.base_size == (size[0] // 2**n, size[1] // 2**n)
    out = gen(one_hot_labels(2, *size, seed=1))
    assert out.shape == (2, 3, *size)
    assert out.abs().max() <= 1.0
    assert out.std() > 0


def test_generator_most_adds_a_half_width_block() -> None:
    gen = SPADEGenerator(LABELS, ngf=8, size=(128, 256), num_upsampling_layers="most", hidden=16)
    assert sum(gen.upsample_before) == 7
    assert gen.to_image.in_channels == 4


@pytest.mark.parametrize(
    ("size", "mode", "message"),
    [((48, 64), "normal", "divisible"), ((64, 96), "more", "divisible"), ((128, 64), "most", "divisible"),
     ((32, 32), "normal", "1x1")],
)
def test_generator_rejects_bad_size(size: tuple[int, int], mode: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SPADEGenerator(LABELS, ngf=8, size=size, num_upsampling_layers=mode)


def test_generator_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="normal"):
        SPADEGenerator(LABELS, ngf=8, size=(64, 64), num_upsampling_layers="many")


def test_generator_with_encoder_depends_on_z() -> None:
    gen = SPADEGenerator(LABELS, ngf=8, size=(32, 64), use_encoder=True, z_dim=16, hidden=16).eval()
    # eval(): in training mode each forward also advances spectral norm's power iteration.
    label = one_hot_labels(1, 32, 64, seed=1)
    z1, z2 = torch.randn(1, 16), torch.randn(1, 16)
    with torch.no_grad():
        out1 = gen(label, z1)
        assert torch.equal(out1, gen(label, z1))
        assert (out1 - gen(label, z2)).abs().max() > 1e-4
        sampled = gen(label, generator=torch.Generator().manual_seed(3))
        assert torch.equal(sampled, gen(label, generator=torch.Generator().manual_seed(3)))
    assert sampled.shape == (1, 3, 32, 64)


@pytest.mark.parametrize("use_encoder", [False, True])
def test_generator_at_a_smaller_preview_size(use_encoder: bool) -> None:
    gen = SPADEGenerator(LABELS, ngf=4, size=(128, 128), use_encoder=use_encoder, z_dim=16, hidden=8).eval()
    label, z = one_hot_labels(1, 128, 128, seed=2), torch.randn(1, 16) if use_encoder else None
    with torch.no_grad():
        assert torch.equal(gen(label, z), gen(label, z, size=(128, 128)))  # native size: the usual pass
        small = gen(label, z, size=(64, 64))
        full = gen(label, z)
    assert small.shape == (1, 3, 64, 64)
    # Same weights and starting map (pooled), so the preview looks like the downsampled full output.
    near = (small - torch.nn.functional.avg_pool2d(full, 2)).abs().mean()
    far = (small - torch.nn.functional.avg_pool2d(full, 2).flip(-1)).abs().mean()
    assert near < far
    with pytest.raises(ValueError, match="divisible by 2"):
        gen(label, z, size=(48, 48))


def test_generator_without_encoder_refuses_z() -> None:
    gen = SPADEGenerator(LABELS, ngf=8, size=(32, 64), hidden=16)
    with pytest.raises(ValueError, match="use_encoder"):
        gen(one_hot_labels(1, 32, 64, seed=1), torch.randn(1, 256))


def test_encoder_shapes_any_input_size() -> None:
    enc = ConvEncoder(in_channels=3, ngf=8, z_dim=16, input_size=32)
    mu, logvar = enc(torch.randn(2, 3, 40, 72))
    assert mu.shape == logvar.shape == (2, 16)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 16)
    z.sum().backward()
    assert enc.mu.weight.grad is not None and enc.logvar.weight.grad is not None


def test_encoder_paper_size_has_six_convs() -> None:
    enc = ConvEncoder(ngf=4, z_dim=8)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == 6
    with pytest.raises(ValueError, match="power of two"):
        ConvEncoder(input_size=100)


def test_reparameterize_is_mu_plus_scaled_noise() -> None:
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    eps = torch.randn((1, 2), generator=torch.Generator().manual_seed(7))
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(z, mu + torch.tensor([[1.0, 2.0]]) * eps)


def test_kl_divergence_matches_hand_computation() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # Sample 1: -0.5 * ((1 + 0 - 1 - 1) + (1 + ln 2 - 0 - 2)) = 1 - ln(2) / 2; sample 2: 0. Batch mean:
    expected = (1 - math.log(2.0) / 2) / 2
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, abs=1e-6)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0


def test_multiscale_discriminator_features() -> None:
    disc = MultiscaleDiscriminator(LABELS + 3, ndf=8, n_layers=3, num_scales=3)
    outputs = disc(torch.randn(2, LABELS + 3, 64, 48))
    assert len(outputs) == 3
    for features in outputs:
        assert len(features) == 3 + 1
        assert features[-1].shape[:2] == (2, 1)
        assert [f.shape[1] for f in features[:-1]] == [8, 16, 32]
    logit_sizes = [features[-1].shape[-2:] for features in outputs]
    assert logit_sizes[0][0] > logit_sizes[1][0] > logit_sizes[2][0]


def test_feature_matching_loss_zero_when_equal_and_detaches_real() -> None:
    disc = MultiscaleDiscriminator(LABELS + 3, ndf=8, n_layers=3, num_scales=2)
    real_in = torch.randn(1, LABELS + 3, 32, 32, requires_grad=True)
    fake_in = torch.randn(1, LABELS + 3, 32, 32, requires_grad=True)
    real, fake = disc(real_in), disc(fake_in)
    assert feature_matching_loss(real, real).item() == 0.0
    loss = feature_matching_loss(real, fake)
    assert loss.item() > 0
    loss.backward()
    assert real_in.grad is None and fake_in.grad is not None


def test_feature_matching_loss_ignores_logits_and_averages_scales() -> None:
    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    fake = [[torch.ones(1, 2, 4, 4), torch.full((1, 1, 2, 2), 9.0)], [torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 1, 1)]]
    # scale 1: L1 = 1 on the feature, logits ignored; scale 2: 0. Mean over scales = 0.5.
    assert feature_matching_loss(real, fake).item() == pytest.approx(0.5)


def test_multiscale_hinge_losses_use_logits() -> None:
    real = [[torch.zeros(1, 3), torch.full((1, 1, 2, 2), 2.0)], [torch.zeros(1, 3), torch.full((1, 1, 1, 1), 0.5)]]
    fake = [[torch.zeros(1, 3), torch.full((1, 1, 2, 2), -2.0)], [torch.zeros(1, 3), torch.full((1, 1, 1, 1), 1.0)]]
    # hinge D: scale 1 relu(1-2) + relu(1-2) = 0; scale 2 relu(0.5) + relu(2) = 2.5 -> mean 1.25
    assert multiscale_discriminator_loss(real, fake).item() == pytest.approx(1.25)
    # hinge G: -mean(fake) -> scale 1: 2, scale 2: -1 -> mean 0.5
    assert multiscale_generator_loss(fake).item() == pytest.approx(0.5)


def test_vgg_loss_missing_file_names_path(tmp_path) -> None:
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(FileNotFoundError, match="vgg19.pth"):
        VGGPerceptualLoss(missing)


def test_vgg_loss_from_local_state_dict(tmp_path) -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg19(weights=None).features[:30].state_dict().items()}
    g = torch.Generator().manual_seed(0)
    state = {f"features.{k}": torch.randn(shape, generator=g) * 0.05 for k, shape in shapes.items()}
    state["classifier.0.bias"] = torch.zeros(4)  # ignored
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)

    loss_fn = VGGPerceptualLoss(path)
    assert torch.equal(loss_fn.slices[0][0].weight, state["features.0.weight"])
    assert not any(p.requires_grad for p in loss_fn.parameters())
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss_fn(y, y).item() == 0.0
    loss = loss_fn(x, y)
    assert loss.item() > 0
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_loss_rejects_wrong_state_dict(tmp_path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        VGGPerceptualLoss(path)
