"""Training on two gloo processes on the CPU (torchrun), checked against one process.

Each torchrun launch costs some seconds of process start-up, so the module shares one two-rank run between
the equivalence and the resume-on-one-process tests, and launches three more: the exact same-size resume and
the dying rank.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig, replace
from engine.data.datasets import EpochSampler
from engine.families.pix2pix.family import Pix2PixConfig
from engine.train.train_process import command
from engine.train.training import RunSpec, run_training
from tests.engine.helpers import state_equal, write_aligned_dataset

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without torch.distributed")]

# Instance norm normalises each image on its own, so one batch of 2b and two batches of b give the same
# activations; batch norm would not (without SyncBatchNorm, each rank normalises over its own b images). No
# dropout, flips or crops: the only randomness left is the weights' initialisation, the same on every rank.
NO_RANDOMNESS = Pix2PixConfig(depth=5, ngf=4, ndf=4, norm="instance", dropout=False)
STEPS = 4


def _spec(data: Path, model: Pix2PixConfig = NO_RANDOMNESS, batch_size: int = 1, flip: bool = False) -> RunSpec:
    train = TrainConfig(steps=STEPS, batch_size=batch_size, size=(32, 32), device="cpu", deterministic=True,
                        sample_every=2, checkpoint_every=2)
    return RunSpec("pix2pix", model, train, DataConfig(path=str(data), flip=flip, preprocess="none"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1"}


def _torchrun(args: list[str]) -> None:
    result = subprocess.run(command(args, nproc=2), env=_env(), cwd=ROOT, capture_output=True, text=True,
                            timeout=290)
    assert result.returncode == 0, result.stderr[-3000:]


def _two_rank_run(spec: RunSpec, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(spec.to_json()))
    _torchrun(["--spec", str(run_dir / "spec.json"), str(run_dir)])
    return run_dir


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, run folder) of a 4-step, batch-1-per-rank run on two processes."""
    root = tmp_path_factory.mktemp("two_ranks")
    data = write_aligned_dataset(root / "data", count=6)
    return data, _two_rank_run(_spec(data), root / "run")


def test_epoch_sampler_shards_add_up_to_the_whole_batch():
    whole, shards = EpochSampler(5, seed=3), [EpochSampler(5, seed=3) for _ in range(2)]
    for rank, shard in enumerate(shards):
        shard.shard(rank, 2)
    for _ in range(7):  # across epoch boundaries
        assert whole.next_batch(4) == shards[0].next_batch(2) + shards[1].next_batch(2)
    assert whole.state_dict() == shards[0].state_dict() == shards[1].state_dict()


def test_launch_commands_and_bad_process_counts(tmp_path, monkeypatch, capsys):
    from engine.cli.main import main as cli
    from engine.train import launch

    assert command(["--resume", "r"])[1:] == ["-m", "engine.train.train_process", "--resume", "r"]
    several = command(["--resume", "r"], nproc=2)
    assert several[1:3] == ["-m", "torch.distributed.run"] and "--nproc-per-node=2" in several
    assert several[-4:] == ["-m", "engine.train.train_process", "--resume", "r"]
    data = write_aligned_dataset(tmp_path / "data", count=2)
    assert cli(["train", "pix2pix", "--data", str(data), "--size", "32", "--nproc", "0",
                "--out", str(tmp_path / "run")]) == 2
    monkeypatch.setattr(launch, "resolve_device", lambda spec: torch.device("cuda"))  # a machine with 1 GPU
    monkeypatch.setattr(launch, "cuda_device_count", lambda: 1)
    capsys.readouterr()
    assert cli(["train", "pix2pix", "--data", str(data), "--size", "32", "--nproc", "2", "--device", "cuda",
                "--out", str(tmp_path / "run")]) == 2
    assert "more processes than this machine's 1 CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(two_ranks, tmp_path):
    data, run_dir = two_ranks
    one = tmp_path / "one"
    run_training(_spec(data, batch_size=2), one)
    a, b = ckpt.load_checkpoint(one), ckpt.load_checkpoint(run_dir)
    assert b.meta["world_size"] == 2 and a.meta["sampler"] == b.meta["sampler"]
    # Losses are averaged over the ranks: they describe the same 2 images as the single process's batch. Only
    # the order of floating-point sums differs (batch of 2 vs all-reduce of two batches of 1).
    for x, y in zip(_log(one), _log(run_dir), strict=True):
        assert x.keys() == y.keys()
        for name in ("G_gan", "G_L1", "D"):
            assert y[name] == pytest.approx(x[name], rel=1e-5), (x["step"], name)
    # Weights agree to 1e-5, except conv biases in front of an instance norm: the norm subtracts them, so
    # their true gradient is zero and Adam scales the rounding noise up to a full step of +-lr either way.
    for group in ("net.G", "net.D"):
        ours, theirs = b.group(group), a.group(group)
        for key, value in theirs.items():
            if not key.endswith("bias"):
                torch.testing.assert_close(ours[key], value, atol=1e-5, rtol=1e-4, msg=key)
    from engine.infer.inference import InferenceSession

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out_one = InferenceSession.from_checkpoint(one, device="cpu").generator(x)
    out_two = InferenceSession.from_checkpoint(run_dir, device="cpu").generator(x)
    torch.testing.assert_close(out_two, out_one, atol=1e-5, rtol=1e-4)


def test_a_two_rank_checkpoint_resumes_on_one_process(two_ranks, tmp_path):
    _, run_dir = two_ranks
    copy = shutil.copytree(run_dir, tmp_path / "run")
    before = ckpt.load_checkpoint(copy)
    run_training(None, copy, resume=True, steps=STEPS + 2)
    after = ckpt.load_checkpoint(copy)
    assert after.step == STEPS + 2 and after.meta["world_size"] == 1 and "ranks" not in after.meta
    # The sampler counts images of the whole batch: 2 per step on two ranks, then 1 per step on one.
    images = before.meta["sampler"]["epoch"] * 6 + before.meta["sampler"]["position"] + 2
    assert after.meta["sampler"]["epoch"] * 6 + after.meta["sampler"]["position"] == images
    assert [r["step"] for r in _log(copy)] == list(range(1, STEPS + 3))
    assert not any(key.startswith("rank") for key in after.tensors)


def test_same_world_size_resume_is_exact(tmp_path):
    """Dropout, flips and crops differ per rank; each rank's random state is saved, so resuming is exact."""
    data = write_aligned_dataset(tmp_path / "data", count=6, size=40)
    spec = _spec(data, model=Pix2PixConfig(depth=5, ngf=4, ndf=4), flip=True)
    spec.data = replace(spec.data, preprocess="resize_and_crop", load_size=(36, 36))
    spec.train = replace(spec.train, decay_start=2)  # the same LR schedule whether the run is set to 2 or 4 steps
    straight = _two_rank_run(spec, tmp_path / "straight")
    spec.train = replace(spec.train, steps=2)
    resumed = _two_rank_run(spec, tmp_path / "resumed")  # step checkpoints are lean: stop at 2 for the full state
    halfway = ckpt.load_checkpoint(resumed)
    assert halfway.step == 2 and halfway.meta["world_size"] == 2
    assert not torch.equal(halfway.tensors["rank1.generator.augment_generator"], halfway.tensors["rng.augment"])
    assert not torch.equal(halfway.tensors["rank1.rng.torch"], halfway.tensors["rng.torch"])  # dropout
    _torchrun(["--resume", str(resumed), "--steps", str(STEPS)])
    a, b = ckpt.load_checkpoint(straight), ckpt.load_checkpoint(resumed)
    assert b.step == STEPS
    for group in ("net.G", "net.D", "optim.G", "optim.D", "rank1"):
        assert state_equal(a.group(group), b.group(group)), group
    assert _log(straight) == _log(resumed)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found += [int(entry.name), *_children(int(entry.name))]
    return found


def _local_rank(pid: int) -> int | None:
    try:
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(v[len(b"LOCAL_RANK="):]) for v in variables if v.startswith(b"LOCAL_RANK=")), None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_a_rank_that_dies_stops_the_run_with_a_clear_message(two_ranks, tmp_path):
    data, _ = two_ranks
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "engine.cli", "train", "pix2pix", "--data", str(data), "--size", "32",
           "--depth", "5", "--ngf", "4", "--ndf", "4", "--norm", "instance", "--steps", "100000", "--device", "cpu",
           "--out", str(run), "--nproc", "2", "--checkpoint-every", "2", "--sample-every", "100000",
           "--no-progress"]
    process = subprocess.Popen(cli, env=_env(), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (run / "latest.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    rank1 = [pid for pid in _children(process.pid) if _local_rank(pid) == 1]
    assert rank1, "rank 1 not found"
    os.kill(rank1[-1], signal.SIGKILL)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 6, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "lost contact with the other training processes" in last and "is intact" in last
    saved = ckpt.load_checkpoint(run)  # the last checkpoint loads: atomic writes, rank 0 alone writes
    assert saved.step >= 2 and f"step {saved.step}" in last
