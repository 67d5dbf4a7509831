"""LPIPS for projection: the distance's properties, loading user-supplied weight files safely, and its use in
``LatentSession.project`` and ``ganvas project --lpips`` (random weights: Ganvas downloads nothing)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torchvision

from engine.core.errors import CheckpointError
from engine.infer.perceptual import load_lpips
from models.lpips import LPIPS, TAP_CHANNELS


@pytest.fixture(scope="module")
def metric() -> LPIPS:
    torch.manual_seed(0)
    return LPIPS()


def test_lpips_is_a_differentiable_distance_weighted_per_channel(metric):
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert metric(x, x).abs().max() < 1e-6
    d = metric(x, y)
    assert d.shape == (2,) and (d > 0).all() and torch.allclose(d, metric(y, x))
    assert (metric(x, x + 0.05 * torch.randn_like(x)) < d).all()
    doubled = LPIPS()
    doubled.features.load_state_dict(metric.features.state_dict())
    doubled.set_linear_weights([torch.full((1, c, 1, 1), 2.0) for c in TAP_CHANNELS])
    assert torch.allclose(doubled(x, y), 2 * d)
    x.requires_grad_(True)
    metric(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in metric.parameters())
    with pytest.raises(ValueError, match="at least 16x16"):
        metric(x[..., :8, :8], y[..., :8, :8])
    with pytest.raises(ValueError, match="negative"):
        doubled.set_linear_weights([-torch.ones(c) for c in TAP_CHANNELS])


def _vgg16_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A randomly initialised torchvision VGG16 state dict, laid out like ``vgg16-397923af.pth`` (features built
    by torchvision itself; the 100 M-parameter classifier stands in as one small tensor)."""
    torch.manual_seed(1)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()} | {"classifier.6.bias": torch.zeros(1000)}
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    return path, state


def test_load_lpips_reads_torchvision_and_lpips_weight_files(tmp_path):
    backbone, state = _vgg16_file(tmp_path)
    linear = tmp_path / "vgg.pth"
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(TAP_CHANNELS)}, linear)
    metric = load_lpips(backbone, linear)
    assert torch.equal(metric.features[28].weight, state["features.28.weight"])
    assert torch.equal(metric.linear[4], torch.load(linear)["lin4.model.1.weight"].flatten())
    bare = tmp_path / "features.pth"  # a features-only state dict (keys 0.weight ...) works too
    torch.save({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}, bare)
    assert torch.equal(load_lpips(bare).features[0].bias, state["features.0.bias"])


def test_foreign_or_unsafe_weight_files_are_refused_by_name(tmp_path):
    backbone, state = _vgg16_file(tmp_path)
    short = tmp_path / "lin_short.pth"
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(TAP_CHANNELS[:3])}, short)
    with pytest.raises(CheckpointError, match="lin_short.pth.*lin3"):
        load_lpips(backbone, short)
    resnet = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, resnet)
    with pytest.raises(CheckpointError, match="resnet.pth.*no VGG16"):
        load_lpips(resnet)
    bn = tmp_path / "vgg16_bn.pth"
    torch.save({k: v for k, v in state.items() if k != "features.28.weight"}, bn)
    with pytest.raises(CheckpointError, match="vgg16_bn.pth.*do not fit a VGG16 backbone"):
        load_lpips(bn)
    unsafe = tmp_path / "unsafe.pth"
    unsafe.write_bytes(pickle.dumps({"features.0.weight": Path("/etc/passwd")}, protocol=2))
    with pytest.raises(CheckpointError, match="unsafe.pth"):
        load_lpips(unsafe)
    with pytest.raises(CheckpointError, match="missing.pth.*not found"):
        load_lpips(tmp_path / "missing.pth")


def test_projection_with_lpips_lowers_its_loss(tmp_path, capsys):
    from engine.cli.main import main
    from engine.core.imageio import write_image
    from engine.families.stylegan2.family import StyleGAN2Config
    from engine.families.stylegan2.latent import LatentSession

    torch.set_num_threads(min(2, torch.get_num_threads()))
    tiny = {"z_dim": 32, "w_dim": 32, "channel_base": 512, "channel_max": 32, "mapping_layers": 2}
    session = LatentSession.untrained(StyleGAN2Config(resolution=32, **tiny), device="cpu")
    torch.manual_seed(0)
    metric = LPIPS()
    target = session.generate([7], psi=0.8)[0]
    events = list(session.project(target, steps=10, space="w+", perceptual=metric, perceptual_weight=2.0))
    assert events[-1].kind == "done" and events[-1].loss < 0.8 * events[0].loss
    assert events[0].loss > events[0].mse  # the LPIPS term is in the reported loss
    # The CLI refuses --lpips-linear alone before any work (test_cli_latent_commands runs --lpips).
    write_image(tmp_path / "target.png", target)
    assert main(["project", str(tmp_path / "target.png"), "--checkpoint", str(tmp_path / "none"),
                 "--lpips-linear", "x.pth", "--out", str(tmp_path / "p")]) == 2
    assert "--lpips-linear needs --lpips" in capsys.readouterr().err
