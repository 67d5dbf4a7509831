"""FID / KID against hand-computed cases; the eval plumbing (FID, KID, LPIPS, results page) with a random
Inception (no weights can be downloaded here, so the numbers only prove the wiring)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.cli.main import main as cli
from engine.core.checkpoint import save_checkpoint
from engine.core.config import DataConfig, TrainConfig, to_dict
from engine.core.errors import CheckpointError
from engine.core.imageio import write_image
from engine.infer.evaluation import EvalExtras, evaluate_checkpoint
from engine.infer.fid import (
    FID_WEIGHTS_FILE,
    InceptionFeatures,
    build_inception,
    fid,
    frechet_distance,
    kid,
    load_inception,
    polynomial_mmd2,
)
from engine.infer.inference import InferenceSession
from tests.engine.helpers import write_aligned_dataset

pytestmark = [pytest.mark.usefixtures("one_torch_thread")]


def test_frechet_distance_of_known_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    # Diagonal covariances commute: |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
    expected = 5.0 + float(np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2)))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, abs=1e-9)
    # Identity against a rotated diag(4, 9): Tr(I + S - 2 S^(1/2)) = 2 + 13 - 2 (2 + 3) = 5.
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = rotation @ np.diag([4.0, 9.0]) @ rotation.T
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), rotated) == pytest.approx(5.0, abs=1e-9)


def test_fid_of_identical_and_shifted_sets():
    features = np.random.default_rng(0).normal(size=(300, 8))
    assert abs(fid(features, features)) < 1e-8
    assert fid(features + 2.0, features) == pytest.approx(8 * 4.0, abs=1e-6)  # only the means move


def test_kid_against_a_hand_computed_case():
    # d = 1, k(a, b) = (ab + 1)^3. x = [0, 1], y = [2, 3]:
    # k_xx off-diagonal 1, 1 -> 2 / 2 = 1; k_yy off-diagonal 343, 343 -> 343; k_xy = 1, 1, 27, 64 -> mean 23.25.
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    assert polynomial_mmd2(x, y) == pytest.approx(1 + 343 - 2 * 23.25)
    # Subsets as large as both sets are permutations of them: every subset gives the same value.
    result = kid(x, y, subsets=5, subset_size=10)
    assert result.mean == pytest.approx(297.5) and result.std == pytest.approx(0.0) and result.subset_size == 2


def test_kid_is_near_zero_for_one_distribution_and_not_for_two():
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(400, 16)), rng.normal(size=(400, 16)), rng.normal(0.5, 1.0, size=(400, 16))
    same, different = kid(a, b, subsets=20, subset_size=200), kid(a, c, subsets=20, subset_size=200)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert different.mean > 10 * (same.std + abs(same.mean))


def test_inception_features_and_weight_files(tmp_path):
    torch.manual_seed(0)
    network = build_inception("fid")
    features = InceptionFeatures(network, resize=75)
    assert features(torch.rand(2, 3, 40, 56) * 2 - 1).shape == (2, 2048)
    torch.save(network.state_dict(), tmp_path / FID_WEIGHTS_FILE)
    loaded = load_inception(tmp_path / FID_WEIGHTS_FILE)
    assert loaded.kind == "fid" and loaded.resize == 299
    assert torch.equal(loaded.blocks[-2].branch_pool.conv.weight, network.Mixed_7c.branch_pool.conv.weight)
    torch.save({"fc.weight": torch.zeros(5, 2048)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: not an Inception-v3 state dict"):
        load_inception(tmp_path / "other.pth")


def _checkpoint(path, family: str, size: int, **config):
    """A checkpoint of an untrained network (the metrics' plumbing does not need a trained one)."""
    session = InferenceSession.untrained(family, size=(size, size), device="cpu", **config)
    key = {"pix2pix": "G.", "stylegan2": "G_ema."}.get(family, "")  # cyclegan and spade hold named networks
    tensors = {f"net.{key}{k}": v.contiguous() for k, v in session.generator.state_dict().items()}
    meta = {"family": family, "model_config": session.card.config, "step": 1,
            "train_config": to_dict(TrainConfig(size=(size, size))), "data_config": to_dict(DataConfig())}
    return save_checkpoint(path, tensors, meta)


class FirstFeatures(torch.nn.Module):
    """A random Inception at 75 px keeping 32 of its 2048 features: the same plumbing, a cheap matrix root."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inception = InceptionFeatures(build_inception("fid"), resize=75)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception(images)[:, :32]


@pytest.fixture(scope="module")
def small_features():
    return FirstFeatures()


def test_pix2pix_eval_reports_fid_kid_and_writes_a_results_page(tmp_path, small_features, capsys):
    data = tmp_path / "data"
    write_aligned_dataset(data / "val", count=5, size=32)
    checkpoint = _checkpoint(tmp_path / "p.safetensors", "pix2pix", 32, depth=5, ngf=4, ndf=4)
    from tests.engine.test_perceptual import _vgg16_file

    backbone, _ = _vgg16_file(tmp_path)
    extras = EvalExtras(fid=True, kid_subsets=3, html=str(tmp_path / "page"), html_rows=4, lpips=str(backbone))
    result = evaluate_checkpoint(checkpoint, data, device="cpu", extras=extras, features=small_features)
    assert result["images"] == 5 and result["FID"] > 0 and np.isfinite(result["KID"])
    assert result["LPIPS"] > 0 and result["LPIPS_kind"] == "vgg features (no linear weights)"
    assert result["KID_std"] >= 0 and result["FID_images"] == "5 generated, 5 real"
    page = (tmp_path / "page" / "index.html").read_text()
    assert page.count("<tr><td><img") == 4 and "FID" in page and "L1" in page
    assert len(list((tmp_path / "page" / "images").glob("*.png"))) == 12
    # Without weights the CLI names the file to get.
    assert cli(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--fid", "--device", "cpu"]) == 2
    assert FID_WEIGHTS_FILE in capsys.readouterr().err


def test_cyclegan_and_stylegan2_eval_batches(tmp_path, small_features):
    rng = np.random.default_rng(0)
    for folder, count in (("testA", 3), ("testB", 5), ("faces", 6)):
        for index in range(count):
            write_image(tmp_path / "data" / folder / f"{index}.png", rng.integers(0, 256, (32, 32, 3), np.uint8))
    cycle = _checkpoint(tmp_path / "c.safetensors", "cyclegan", 32, ngf=4, ndf=4, n_blocks=1)
    result = evaluate_checkpoint(cycle, tmp_path / "data", device="cpu", features=small_features,
                                 extras=EvalExtras(fid=True, kid_subsets=2))
    assert result["AtoB_FID_images"] == "3 generated, 5 real" and result["BtoA_FID_images"] == "5 generated, 3 real"
    assert result["AtoB_FID"] > 0 and "cycle_L1_A" in result
    style = _checkpoint(tmp_path / "s.safetensors", "stylegan2", 32, resolution=32, z_dim=32, w_dim=32,
                        channel_base=512, channel_max=32, mapping_layers=2)
    result = evaluate_checkpoint(style, tmp_path / "data" / "faces", device="cpu", features=small_features,
                                 extras=EvalExtras(fid=True, samples=20, kid_subsets=2, html=str(tmp_path / "s")))
    assert result["FID_images"] == "20 generated, 6 real" and result["FID"] > 0
    assert (tmp_path / "s" / "images" / "0000_output.png").is_file()
    assert (tmp_path / "s" / "images" / "0000_target.png").is_file()
    with pytest.raises(Exception, match="no paired targets"):
        evaluate_checkpoint(style, tmp_path / "data" / "faces", device="cpu")


def test_kid_in_fixed_feature_spaces_ranks_a_look_alike_set_nearer_than_noise(tmp_path):
    """``scripts/kid_fixed.py`` (the StyleGAN2 ablation's yardstick): a second sample of the real kind of image is
    nearer to the real set than noise is, in both of its feature spaces."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    script = Path(__file__).resolve().parents[2] / "scripts" / "kid_fixed.py"
    spec = importlib.util.spec_from_file_location("kid_fixed", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)

    def discs(folder: Path, count: int) -> Path:  # yellow faces of varying size and place on white
        folder.mkdir()
        for index in range(count):
            image = np.full((64, 64, 3), 255, np.uint8)
            centre = tuple(int(c) for c in rng.integers(26, 38, 2))
            cv2.circle(image, centre, int(rng.integers(18, 26)), (40, 200, 250), -1)
            cv2.circle(image, (centre[0] - 8, centre[1] - 4), 3, (30, 30, 30), -1)
            cv2.imwrite(str(folder / f"{index}.png"), image)
        return folder

    real, alike, noise = discs(tmp_path / "real", 24), discs(tmp_path / "alike", 24), tmp_path / "noise"
    noise.mkdir()
    for index in range(24):
        cv2.imwrite(str(noise / f"{index}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    done = subprocess.run([sys.executable, str(script), "--real", str(real), str(alike), str(noise),
                           "--subsets", "10"], capture_output=True, text=True, timeout=120, check=True)
    near, far = (json.loads(line) for line in done.stdout.splitlines())
    assert near["n"] == far["n"] == 24
    for space in module.SPACES:
        assert near[f"kid_{space}"] < 0.2 * far[f"kid_{space}"], (space, near, far)
