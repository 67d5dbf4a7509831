"""pix2pix through the engine: data, transforms, checkpoints, exact resume, NaN handling, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from engine.cli.main import main as cli
from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import CheckpointError, DatasetError, StorageError, TrainingError
from engine.core.imageio import read_image, write_image
from engine.data.augment import PairedAugment
from engine.data.datasets import PairedImages, detect_layout, pair_files
from engine.families.pix2pix.family import Pix2PixConfig, Pix2PixTrainer
from engine.infer.inference import InferenceSession
from engine.train.training import RunSpec, run_training
from tests.engine.helpers import state_equal, write_aligned_dataset

TINY = Pix2PixConfig(depth=5, ngf=4, ndf=4)


def tiny_spec(data, steps=4, **train):
    options = {"steps": steps, "size": (32, 32), "device": "cpu", "deterministic": True, "sample_every": 2,
               "checkpoint_every": 2, **train}
    return RunSpec("pix2pix", TINY, TrainConfig(**options), DataConfig(path=str(data)))


def test_layout_detection_and_paired_folders(tmp_path):
    aligned = write_aligned_dataset(tmp_path / "aligned")
    assert detect_layout(aligned) == "aligned"
    for name in ("A", "B"):
        (tmp_path / "paired" / name).mkdir(parents=True)
        for stem in ("x", "y"):
            write_image(tmp_path / "paired" / name / f"{stem}.png", np.zeros((8, 8, 3), np.uint8))
    assert pair_files(tmp_path / "paired") [0] == "paired"
    write_image(tmp_path / "paired" / "A" / "lonely.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="no partner.*A/lonely"):
        pair_files(tmp_path / "paired")


def test_direction_swaps_halves(tmp_path):
    data = write_aligned_dataset(tmp_path / "d", count=1)
    a_to_b = PairedImages(data, DataConfig(preprocess="none"), (32, 32))[0]
    b_to_a = PairedImages(data, DataConfig(preprocess="none", direction="BtoA"), (32, 32))[0]
    assert torch.equal(a_to_b[:3], b_to_a[3:]) and torch.equal(a_to_b[3:], b_to_a[:3])


def test_same_random_transform_on_both_halves():
    generator = torch.Generator().manual_seed(3)
    augment = PairedAugment((16, 16), flip=True, device=torch.device("cpu"), generator=generator)
    half = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    for _ in range(10):
        batch = augment([torch.cat([half, half])] * 4)
        assert torch.equal(batch[:, :3], batch[:, 3:])
    assert batch.shape == (4, 6, 16, 16) and -1 <= batch.min() and batch.max() <= 1


def test_checkpoint_round_trip_rebuilds_network(tmp_path):
    data = write_aligned_dataset(tmp_path / "d")
    run_training(tiny_spec(data, steps=2), tmp_path / "run")
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    assert loaded.step == 2 and loaded.family == "pix2pix"
    assert loaded.meta["model_config"]["ngf"] == 4 and loaded.meta["format_version"] == ckpt.FORMAT_VERSION
    assert {"net.G", "net.D", "optim.G", "optim.D"} <= {".".join(k.split(".")[:2]) for k in loaded.tensors}
    session = InferenceSession.from_checkpoint(tmp_path / "run", device="cpu")  # from the file alone
    assert state_equal(session.generator.state_dict(), loaded.group("net.G"))
    assert session.translate(np.zeros((50, 70, 3), np.uint8)).shape == (32, 32, 3)
    assert session.translate(np.zeros((50, 70, 3), np.uint8), keep_size=True).shape == (50, 70, 3)


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(3)}, {"family": "pix2pix", "model_config": {}})

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(StorageError, match="No space left"):
        ckpt.save_checkpoint(path, {"w": torch.zeros(3)}, {"family": "pix2pix", "model_config": {}})
    monkeypatch.undo()
    assert torch.equal(ckpt.load_checkpoint(path).tensors["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp files left


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    good = ckpt.save_checkpoint(tmp_path / "g.safetensors", {"w": torch.ones(1000)},
                                {"family": "pix2pix", "model_config": {}})
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: truncated"):
        ckpt.load_checkpoint(tmp_path / "cut.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a Ganvas checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.safetensors")
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match="PyTorch pickle"):
        ckpt.load_checkpoint(tmp_path / "old.pth")
    assert torch.equal(ckpt.load_pth_state_dict(tmp_path / "old.pth")["w"], torch.ones(2))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        ckpt.load_checkpoint(tmp_path / "empty.safetensors")


def test_pth_import_refuses_pickled_code(tmp_path):
    import collections

    torch.save({"w": collections.Counter(a=1)}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth"):
        ckpt.load_pth_state_dict(tmp_path / "evil.pth")


def test_keep_last_n_and_latest(tmp_path):
    data = write_aligned_dataset(tmp_path / "d")
    run_training(tiny_spec(data, steps=8, keep_last=2), tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step_00000006.safetensors", "step_00000008.safetensors"]
    latest = ckpt.load_checkpoint(tmp_path / "run")
    assert latest.step == 8 and latest.has_group("optim.G") and latest.has_group("net.D")
    snapshot = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / names[-1])  # lean: the generator only
    assert snapshot.meta["snapshot"] and set(k.split(".")[1] for k in snapshot.tensors) == {"G"}
    name = next(k for k, v in latest.group("net.G").items() if v.dtype == torch.float32)
    assert snapshot.group("net.G")[name].dtype == torch.float16
    assert os.path.getsize(snapshot.path) < os.path.getsize(latest.path) / 4
    assert torch.allclose(snapshot.group("net.G")[name].float(), latest.group("net.G")[name], atol=1e-3)
    image = np.full((32, 32, 3), 128, np.uint8)
    full, lean = (InferenceSession.from_checkpoint(p, "cpu").translate(image).astype(int)
                  for p in (latest.path, snapshot.path))
    assert np.abs(full - lean).max() <= 2  # a snapshot draws like the full checkpoint
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9)) and {"G_gan", "G_L1", "D"} <= set(log[0])
    assert (tmp_path / "run" / "samples" / "step_00000004.png").is_file()


def test_split_training_equals_straight_training_bit_for_bit(tmp_path):
    data = write_aligned_dataset(tmp_path / "d", count=3)
    run_training(tiny_spec(data, steps=6), tmp_path / "straight")
    run_training(tiny_spec(data, steps=6), tmp_path / "split", should_stop=_stop_after(3))
    assert ckpt.load_checkpoint(tmp_path / "split").step == 3
    run_training(None, tmp_path / "split", resume=True)
    a, b = ckpt.load_checkpoint(tmp_path / "straight"), ckpt.load_checkpoint(tmp_path / "split")
    assert b.step == 6
    for group in ("net.G", "net.D", "optim.G", "optim.D"):
        assert state_equal(a.group(group), b.group(group)), group
    assert a.meta["sampler"] == b.meta["sampler"]
    straight = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    split = (tmp_path / "split" / "log.jsonl").read_text().splitlines()
    assert straight == split


def _stop_after(steps):
    calls = iter(range(10**6))
    return lambda: next(calls) >= steps


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    data = write_aligned_dataset(tmp_path / "d")
    original = Pix2PixTrainer.train_step
    count = iter(range(100))

    def poisoned(self, batch):
        losses = original(self, batch)
        if next(count) >= 2:
            losses["G_L1"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(Pix2PixTrainer, "train_step", poisoned)
    with pytest.raises(TrainingError, match="G_L1 became nan at step 3"):
        run_training(tiny_spec(data, steps=6), tmp_path / "run")
    good = ckpt.load_checkpoint(tmp_path / "run")
    assert good.step == 2 and all(torch.isfinite(v).all() for v in good.group("net.G").values())


def test_cli_train_translate_eval_info(tmp_path, capsys):
    data = write_aligned_dataset(tmp_path / "data" / "train", count=3)
    write_aligned_dataset(tmp_path / "data" / "val", count=2, seed=1)
    run = tmp_path / "run"
    assert cli(["train", "pix2pix", "--data", str(tmp_path / "data"), "--size", "32", "--steps", "3",
                "--ngf", "4", "--ndf", "4", "--out", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert cli(["translate", "--checkpoint", str(run), str(data / "0.png"), "--half", "left",
                "--out", str(tmp_path / "out")]) == 0
    assert read_image(tmp_path / "out" / "0.png").shape == (32, 32, 3)
    assert cli(["eval", "--checkpoint", str(run), "--data", str(tmp_path / "data"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 2 and 0 <= result["L1"] <= 1 and result["step"] == 3
    assert cli(["info", str(run)]) == 0
    assert "pix2pix" in capsys.readouterr().out
    assert cli(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    assert ckpt.load_checkpoint(run).step == 4
    assert cli(["train", "pix2pix", "--data", str(tmp_path / "data"), "--size", "32", "--out", str(run)]) == 2


@pytest.mark.realdata
def test_facades_real_data_training_steps(shared_data, tmp_path):
    spec = RunSpec("pix2pix", Pix2PixConfig(depth=6, ngf=8, ndf=8),
                   TrainConfig(steps=2, size=(64, 64), device="cpu", sample_every=2, checkpoint_every=2),
                   DataConfig(path=str(shared_data / "facades"), direction="BtoA"))
    event = run_training(spec, tmp_path / "run")
    assert event.kind == "done"
    meta = ckpt.read_metadata(tmp_path / "run")
    assert meta["dataset"]["pairs"] == 400 and meta["dataset"]["layout"] == "aligned"
    grid = read_image(tmp_path / "run" / "samples" / "latest.png")
    assert grid.shape[1] > 3 * 64 and grid.std() > 10
    assert os.path.getsize(tmp_path / "run" / "latest.safetensors") > 100_000


def test_import_pth_builds_a_checkpoint(tmp_path):
    from models.unet import UNetGenerator

    net = UNetGenerator(3, 3, depth=5, ngf=4)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "g.pth")
    out = tmp_path / "g.safetensors"
    assert cli(["import-pth", str(tmp_path / "g.pth"), "--out", str(out), "pix2pix", "--size", "32",
                "--depth", "5", "--ngf", "4"]) == 0
    session = InferenceSession.from_checkpoint(out, device="cpu")
    assert state_equal(session.generator.state_dict(), net.state_dict())
    assert cli(["import-pth", str(tmp_path / "g.pth"), "--out", str(out), "pix2pix", "--ngf", "8"]) == 5


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    data = write_aligned_dataset(tmp_path / "d")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "engine.cli", "train", "pix2pix", "--data", str(data), "--size", "32",
               "--depth", "5", "--ngf", "4", "--ndf", "4", "--steps", "100000", "--out", str(run),
               "--device", "cpu", "--no-progress", "--checkpoint-every", "100000", "--sample-every", "100000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    saved = ckpt.load_checkpoint(run)
    assert 0 < saved.step < 100000


def test_resume_takes_another_device_and_unchanged_flags(tmp_path, capsys):
    data = write_aligned_dataset(tmp_path / "d")
    run_training(tiny_spec(data, steps=2), tmp_path / "run")
    run = str(tmp_path / "run")
    assert cli(["train", "--resume", run, "--device", "cpu", "--steps", "3", "--size", "32", "--seed", "0",
                "--no-progress"]) == 0  # the device is not a model setting; repeating a value changes nothing
    assert ckpt.load_checkpoint(tmp_path / "run").step == 3
    assert cli(["train", "--resume", run, "--size", "64", "--steps", "4", "--no-progress"]) != 0
    assert "drop size" in capsys.readouterr().err
