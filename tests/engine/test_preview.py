"""Live previews: a coarse pass at the largest scale that fits the time budget, at the output size asked for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.infer.guided_upsample import _inverse3, guided_upsample
from engine.infer.inference import InferenceSession
from engine.infer.mode import inference_mode


def _session(family: str = "pix2pix", **config) -> InferenceSession:
    config = config or {"depth": 6, "ngf": 4, "ndf": 4}
    return InferenceSession.untrained(family, size=(64, 64), device="cpu", **config)


def test_preview_drops_to_a_smaller_pass_when_the_full_one_is_over_budget(one_torch_thread):
    session = _session()
    image = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    full = session.translate(image, keep_size=True)
    session.preview_budget_ms = 0.0  # nothing fits: the smallest scale is used
    previews = [session.translate(image, keep_size=True, preview=True) for _ in range(3)]
    assert session.preview_size((64, 64)) == (16, 16)
    assert all(p.shape == full.shape == (80, 80, 3) for p in previews)
    assert {key[:2] for key in session._pass_ms} >= {(64, 64), (16, 16)}  # the quarter-size pass really ran
    # The preview is the U-Net's coarse pass on the area-downsampled input, enlarged twice along the input's
    # edges, then bilinearly.
    batch = session.family.prepare_input(image, session.card)
    session.translate_tensor(batch)  # after a full pass the next preview recomputes everything
    small = F.interpolate(batch, size=(16, 16), mode="area")
    with inference_mode(session.generator):
        coarse = session.generator.preview(small)
    guide = F.interpolate(batch, size=(32, 32), mode="area")
    expected = guided_upsample(coarse, small, guide).clamp(-1, 1)
    expected = F.interpolate(expected, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(session.preview_tensor(batch), expected, atol=1e-6)


def test_preview_stays_at_full_size_when_it_fits_or_the_family_has_no_preview(one_torch_thread):
    session = _session()
    session.preview_budget_ms = 1e9
    image = np.zeros((64, 64, 3), np.uint8)
    session.translate(image)
    assert session.preview_size((64, 64)) == (64, 64)
    assert np.array_equal(session.translate(image, preview=True), session.translate(image))

    spade = _session("spade", image_size=(64, 64), ngf=4, spade_hidden=8)
    spade.preview_budget_ms = 0.0
    assert spade.preview_size((64, 64)) == (64, 64)


def test_spade_previews_run_the_generator_smaller_on_exact_label_ids(one_torch_thread):
    session = _session("spade", image_size=(128, 128), ngf=4, spade_hidden=8, use_encoder=True, z_dim=8)
    ids = torch.randint(0, session.generator.config.n_classes, (1, 1, 8, 8)).float()
    batch = F.interpolate(ids, size=(128, 128), mode="nearest")
    session.translate_tensor(batch, seed=3)  # the full pass is timed first
    session.preview_budget_ms = 0.0
    assert session.family.preview_multiple(session.generator) == 64  # a 2x2 starting map at least
    assert session.preview_size((128, 128)) == (64, 64)
    small = session.family.preview_input(batch, (64, 64))
    assert set(small.unique().tolist()) <= set(ids.unique().tolist())  # ids, never averages of ids
    preview = session.preview_tensor(batch, seed=3)
    assert preview.shape == (1, 3, 128, 128)
    assert (64, 64, True) in session._pass_ms  # the half-size pass really ran
    with inference_mode(session.generator, batch_stats=False):
        expected = session.family._synthesise(session.generator, small, (64, 64), seed=3)
    expected = F.interpolate(expected, size=(128, 128), mode="bilinear", align_corners=False)
    assert torch.allclose(preview, expected, atol=1e-6)


def test_untimed_preview_sizes_are_tried_before_being_judged(one_torch_thread):
    session = _session()
    session.preview_budget_ms = 5.0
    session._pass_ms = {(64, 64, True): 40.0}  # a 40 ms full pass: half size estimated at 10 ms, quarter 2.5 ms
    assert session.preview_size((64, 64)) == (16, 16)
    session._pass_ms = {(64, 64, True): 16.0}  # half size estimated at 4 ms: tried
    assert session.preview_size((64, 64)) == (32, 32)
    session._pass_ms[(32, 32, True)] = 9.0  # refresh timed, reuse not yet: try again before judging
    assert session.preview_size((64, 64)) == (32, 32)
    session._pass_ms[(32, 32, False)] = 4.0  # (9 + 5 x 4) / 6 = 4.8 ms amortised: fits
    assert session.preview_size((64, 64)) == (32, 32)
    session._pass_ms[(32, 32, False)] = 6.0
    assert session.preview_size((64, 64)) == (16, 16)


def test_guided_upsampling_restores_edges_that_bilinear_blurs():
    # Label-like input (flat regions, sharp edges) and an output that is a colour mapping of it.
    ids = torch.randint(0, 4, (1, 1, 8, 8)).float()
    guide = F.interpolate(torch.cat([ids / 3, (ids % 2), 1 - ids / 3], 1), size=(64, 64), mode="nearest") * 2 - 1
    target = torch.tanh(0.7 * guide.flip(1) - 0.2)
    small_guide = F.interpolate(guide, size=(16, 16), mode="area")
    small_out = F.interpolate(target, size=(16, 16), mode="area")
    guided = guided_upsample(small_out, small_guide, guide)
    bilinear = F.interpolate(small_out, size=(64, 64), mode="bilinear", align_corners=False)
    assert guided.shape == target.shape
    assert (guided - target).abs().mean() < 0.5 * (bilinear - target).abs().mean()


def test_guided_upsampling_keeps_a_flat_output_flat_and_checks_shapes():
    guide = torch.rand(2, 1, 32, 32)
    small = F.interpolate(guide, size=(8, 8), mode="area")
    flat = torch.full((2, 3, 8, 8), 0.25)
    assert torch.allclose(guided_upsample(flat, small, guide), torch.full((2, 3, 32, 32), 0.25), atol=1e-5)
    with pytest.raises(ValueError, match="share"):
        guided_upsample(flat, small[:, :, :4], guide)


def test_guided_fit_inverts_colour_covariances_exactly_and_takes_any_channel_count():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4, 3, 3)).astype(np.float32)
    spd = m @ m.transpose(0, 1, 3, 2) + 0.1 * np.eye(3, dtype=np.float32)
    inverse = _inverse3({(j, k): spd[..., j, k] for j in range(3) for k in range(j, 3)})
    np.testing.assert_allclose(np.stack([np.stack(row, -1) for row in inverse], -2), np.linalg.inv(spd),
                               rtol=1e-3, atol=1e-3)
    guide = torch.rand(1, 2, 32, 32)  # two guide channels: the general solver
    small = F.interpolate(guide, size=(8, 8), mode="area")
    assert guided_upsample(small[:, :1] * 0.5, small, guide).shape == (1, 1, 32, 32)
