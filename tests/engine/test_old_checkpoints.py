"""Checkpoints written by an earlier Ganvas (``tests/fixtures/old_format``, see its README) keep working: each
rebuilds its network from the file alone, gives the output stored beside it, and a run resumes from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli.main import main as cli
from engine.core.checkpoint import load_checkpoint
from engine.core.imageio import read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "tests" / "fixtures" / "old_format"
SAMPLES = ROOT / "assets" / "samples"
INPUTS = {"pix2pix": "facade_labels.png", "cyclegan": "face_sketch.png", "spade": "facade_labels.png"}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("family", sorted(INPUTS))
def test_old_checkpoint_translates_as_it_did(family, tmp_path):
    source = SAMPLES / INPUTS[family]
    assert cli(["translate", "--checkpoint", str(OLD / f"{family}.safetensors"), str(source),
                "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert psnr(read_image(tmp_path / source.name), read_image(OLD / f"{family}.png")) >= 40.0


def test_old_stylegan2_checkpoint_generates_as_it_did(tmp_path):
    assert cli(["generate", "--checkpoint", str(OLD / "stylegan2.safetensors"), "--seeds", "0", "--psi", "0.7",
                "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert psnr(read_image(tmp_path / "seed_0000.png"), read_image(OLD / "stylegan2.png")) >= 40.0


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan", "spade", "stylegan2"])
def test_run_resumes_from_an_old_checkpoint(family, tmp_path, shared_data, monkeypatch):
    """Its train and data configs still parse; the data path it stores is relative to the repository root."""
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(OLD / f"{family}.safetensors", run / "latest.safetensors")
    assert cli(["train", family, "--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    old, new = load_checkpoint(OLD / f"{family}.safetensors"), load_checkpoint(run / "latest.safetensors")
    assert new.meta["step"] == 3
    # the run keeps its learning rates and Adam betas (stored in older field names) and its optimizer moments
    assert new.meta["lr_schedule"]["base_lrs"] == old.meta["lr_schedule"]["base_lrs"]
    for name, info in old.meta["optimizers"].items():
        assert [g["betas"] for g in new.meta["optimizers"][name]["param_groups"]] == \
            [g["betas"] for g in info["param_groups"]]
    counts = {key: (float(old.tensors[key]), float(value)) for key, value in new.tensors.items()
              if key.startswith("optim.") and key.endswith(".0.step")}
    assert counts and all(after > before >= 2 for before, after in counts.values()), counts
