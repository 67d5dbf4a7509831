"""Fault injection (issue 20): kills, full disks, unwritable folders. Every trial is a tiny run, bounded in time.

* SIGKILL at random points of training runs of every family, then resume: the run continues from its last
  checkpoint, the log has each step once, and the end result equals an uninterrupted run bit for bit.
* SIGKILL during checkpoint writes: the previous checkpoint always loads, and leftovers are cleaned.
* A full disk (a small tmpfs when this machine lets the tests mount one, else writes that fail with ENOSPC)
  during training, a checkpoint write, an export and a project save: one clear error naming the path and the
  space needed, the previous file intact, and the run resumable once space is freed.

The kills run in children of a ``forkserver`` that has torch and the engine imported, so a trial costs a fork,
not an interpreter start. The kill points come from a seeded RNG, so every run tries the same points.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli.main import main as cli
from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import StorageError
from engine.core.imageio import read_image, write_image
from engine.core.project import ModelReference, Project, load_project, save_project
from engine.families.cyclegan.family import CycleGANConfig
from engine.families.pix2pix.family import Pix2PixConfig
from engine.families.spade.family import SPADEConfig
from engine.families.stylegan2.family import StyleGAN2
from engine.train.training import RunSpec, run_training, train
from tests.engine.helpers import write_aligned_dataset

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.fault]

KILLS_PER_FAMILY = 5  # x 4 families = 20 SIGKILL trials over training runs
CHECKPOINT_WRITE_KILLS = 24
TRIAL_TIMEOUT_S = 240  # a child that shows no progress for this long fails the test instead of hanging it


# --- tiny runs of every family ------------------------------------------------------------------------------------
def _write_domains(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for domain, count in (("trainA", 3), ("trainB", 4)):
        for index in range(count):
            write_image(root / domain / f"{index}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return root


def _write_labels(root: Path) -> Path:
    rng = np.random.default_rng(2)
    for index in range(3):
        ids = np.kron(rng.integers(0, 12, (8, 8)), np.ones((8, 8))).astype(np.uint8)
        write_image(root / "labels" / f"{index}.png", ids)
        write_image(root / "images" / f"{index}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return root


def family_spec(family: str, root: Path) -> RunSpec:
    """A deterministic run of 12 steps with a checkpoint every 2 steps, on a synthetic dataset."""
    common = {"device": "cpu", "deterministic": True, "checkpoint_every": 2, "sample_every": 3, "compile": "off"}
    if family == "pix2pix":
        return RunSpec(family, Pix2PixConfig(depth=5, ngf=4, ndf=4), TrainConfig(steps=12, size=(32, 32), **common),
                       DataConfig(path=str(write_aligned_dataset(root / "data"))))
    if family == "cyclegan":
        return RunSpec(family, CycleGANConfig(ngf=8, ndf=8, n_blocks=2, pool_size=2),
                       TrainConfig(steps=12, size=(32, 32), decay_start=2, **common),
                       DataConfig(path=str(_write_domains(root / "data"))))
    if family == "spade":
        config = SPADEConfig(image_size=(64, 64), ngf=8, ndf=8, spade_hidden=16, n_layers_D=3, z_dim=16)
        return RunSpec(family, config, TrainConfig(steps=12, size=(64, 64), **common),
                       DataConfig(path=str(_write_labels(root / "data"))))
    config = StyleGAN2.auto_config((32, 32), {"z_dim": 32, "w_dim": 32, "channel_base": 512, "channel_max": 32,
                                              "mapping_layers": 2, "r1_interval": 2, "pl_interval": 2,
                                              "ema_kimg": 0.01})
    data = StyleGAN2.write_synthetic_dataset(root / "data" / "sub", (40, 40), count=5).parent
    return RunSpec(family, config, TrainConfig(steps=12, batch_size=2, size=(32, 32), seed=3, **common),
                   DataConfig(path=str(data)))


def _train_child(spec: RunSpec | None, run_dir: str) -> None:
    """A training process to kill: a new run, or a resume when ``spec`` is None."""
    torch.set_num_threads(1)
    run_training(spec, run_dir, resume=spec is None)


def _save_checkpoints_child(run_dir: str, first_step: int) -> None:
    """Writes checkpoints as fast as it can (all its time goes to writes): step ``n`` holds the value ``n`` (in
    ``w``, kept by ``latest`` only, and in ``net.G.step``, which the generator-only step snapshots keep too)."""
    checkpoints = ckpt.RunCheckpoints(run_dir, keep_last=2)
    weights = torch.zeros(1 << 20)  # 4 MB
    for step in range(first_step, first_step + 10_000):
        weights[0] = step
        checkpoints.save(step, {"w": weights, "net.G.step": torch.tensor([step])}, {"family": "pix2pix", "model_config": {}, "step": step})


@pytest.fixture(scope="module")
def forkserver():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "engine.train.training", "engine.families.pix2pix.family", "engine.families.cyclegan.family",
                                    "engine.families.spade.family", "engine.families.stylegan2.family", __name__])
    return context


def log_steps(run: Path) -> list[int]:
    """The steps of the raw log lines (torn lines are -1): what is on disk, before any reader repairs it."""
    try:
        lines = (run / "log.jsonl").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    steps = []
    for line in lines:
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            steps.append(-1)
    return steps


def tensors_of(path: Path) -> dict[str, torch.Tensor]:
    loaded = ckpt.load_checkpoint(path)
    return {k: v for k, v in loaded.tensors.items() if k.startswith(("net.", "ema.", "optim.", "extra."))}


# --- SIGKILL during training -----------------------------------------------------------------------------------------
@pytest.mark.timeout(1200)  # a loaded CI machine; each family is ~15 s of CPU
@pytest.mark.parametrize("family", ["pix2pix", "cyclegan", "spade", "stylegan2"])
def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(family, tmp_path, forkserver):
    spec = family_spec(family, tmp_path)
    run_training(spec, tmp_path / "straight")
    reference_log = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    rng = random.Random(f"sigkill-{family}")
    run = tmp_path / "killed"
    total, kills = spec.train.steps, 0
    while kills < KILLS_PER_FAMILY:
        latest = ckpt.load_checkpoint(run).step if (run / ckpt.LATEST).exists() else 0
        if latest >= total:
            break
        # Kill once step latest+1 or latest+2 is logged, plus up to 40 ms: mid-step, mid-flush, mid-sample or
        # mid-checkpoint; at most one checkpoint is gained per trial and the last step is never the target, so
        # 12 steps always hold 5 kills.
        target = min(total - 1, latest + rng.randint(1, 2))
        extra_s = rng.uniform(0, 0.04)
        child = forkserver.Process(target=_train_child, args=(spec if latest == 0 else None, str(run)))
        child.start()
        deadline = time.monotonic() + TRIAL_TIMEOUT_S
        try:
            while child.is_alive() and max(log_steps(run), default=0) < target:
                assert time.monotonic() < deadline, f"{family}: no progress to step {target}"
                time.sleep(0.01)
            time.sleep(extra_s)
        finally:  # a failed trial leaves no training process behind
            if child.is_alive():
                child.kill()  # SIGKILL
                kills += 1
            child.join(30)
        assert child.exitcode is not None, "the killed child did not exit"
        if (run / ckpt.LATEST).exists():  # whatever the kill hit, the latest checkpoint loads
            saved = ckpt.load_checkpoint(run)
            assert saved.step % spec.train.checkpoint_every == 0 or saved.step == total
    assert kills == KILLS_PER_FAMILY
    if (run / ckpt.LATEST).exists():
        run_training(None, run, resume=True)
    else:
        run_training(spec, run)
    steps = log_steps(run)
    assert steps == list(range(1, total + 1)), f"{family}: log steps {steps}"
    assert (run / "log.jsonl").read_text().splitlines() == reference_log
    a, b = tensors_of(tmp_path / "straight"), tensors_of(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), family
    assert not list(run.glob(".*.tmp")) and not list((run / "checkpoints").glob(".*.tmp"))


# --- SIGKILL during checkpoint writes -----------------------------------------------------------------------------------
def test_sigkill_during_checkpoint_writes_keeps_the_previous_checkpoint(tmp_path, forkserver):
    run = tmp_path / "run"
    rng = random.Random("checkpoint-writes")
    mid_write, last_step = 0, -1
    for _ in range(CHECKPOINT_WRITE_KILLS):
        child = forkserver.Process(target=_save_checkpoints_child, args=(str(run), last_step + 1))
        child.start()
        deadline = time.monotonic() + TRIAL_TIMEOUT_S
        try:
            while not (run / ckpt.LATEST).exists() or ckpt.read_metadata(run)["step"] <= last_step:
                assert time.monotonic() < deadline and child.is_alive(), "the writer made no progress"
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.15))
        finally:
            child.kill()
            child.join(30)
        leftovers = list(run.glob(".*.tmp")) + list((run / "checkpoints").glob(".*.tmp"))
        mid_write += bool(leftovers)
        latest = ckpt.load_checkpoint(run)
        assert latest.step > last_step and latest.tensors["w"][0].item() == latest.step
        for path in ckpt.RunCheckpoints(run).step_files():  # every step file left is whole too
            step_file = ckpt.load_checkpoint(path)
            assert step_file.tensors["net.G.step"].item() == step_file.step
        ckpt.RunCheckpoints(run).remove_orphans()
        assert not list(run.glob(".*.tmp")) and not list((run / "checkpoints").glob(".*.tmp"))
        last_step = latest.step
    assert mid_write > 0, "no kill landed inside a write: the trial proves nothing"


# --- a full disk -------------------------------------------------------------------------------------------------------------
class SmallDisk:
    """A folder on a 48 MB tmpfs when the tests may mount one (root on Linux); otherwise a plain folder where
    :meth:`fill` makes writes fail with ENOSPC (the checkpoint writer, atomic writes' fsync, log appends)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder, self.monkeypatch = folder, monkeypatch
        folder.mkdir(parents=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(folder)],
                                capture_output=True) if os.geteuid() == 0 else None
        self.tmpfs = result is not None and result.returncode == 0
        self.ballast = folder / "ballast"

    def fill(self) -> None:
        if self.tmpfs:
            chunk = b"\0" * (1 << 16)
            try:
                with open(self.ballast, "ab", buffering=0) as handle:
                    while True:
                        handle.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            return
        import builtins

        from engine.core import checkpoint as checkpoint_module

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.monkeypatch.setattr(checkpoint_module, "save_file", no_space)
        self.monkeypatch.setattr(os, "fsync", no_space)
        self.monkeypatch.setattr("engine.train.training.open", lambda path, mode="r", *a, **k: no_space() if "a" in mode
                                 else builtins.open(path, mode, *a, **k), raising=False)

    def free(self) -> None:
        if self.tmpfs:
            self.ballast.unlink()
        else:
            self.monkeypatch.undo()

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True)


@pytest.fixture()
def small_disk(tmp_path, monkeypatch):
    disk = SmallDisk(tmp_path / "disk", monkeypatch)
    yield disk
    disk.close()


def test_full_disk_during_training_stops_cleanly_and_resumes_once_freed(tmp_path, small_disk):
    spec = family_spec("pix2pix", tmp_path)
    run_training(spec, tmp_path / "straight")
    run = small_disk.folder / "run"
    events = train(spec, run)
    with pytest.raises(StorageError) as failure:
        for event in events:
            if event.kind == "checkpoint" and event.step == 4:
                small_disk.fill()
    message = str(failure.value)
    assert str(run) in message and "No space left on device" in message and "free space is needed" in message
    assert ckpt.load_checkpoint(run).step == 4  # the last checkpoint before the disk filled
    small_disk.free()
    run_training(None, run, resume=True)
    a, b = tensors_of(tmp_path / "straight"), tensors_of(run)
    assert all(torch.equal(a[k], b[k]) for k in a) and log_steps(run) == list(range(1, spec.train.steps + 1))


def test_full_disk_during_a_checkpoint_write_keeps_the_previous_one(small_disk):
    path = small_disk.folder / "model.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(1 << 18)}, {"family": "pix2pix", "model_config": {}, "step": 1})
    small_disk.fill()
    with pytest.raises(StorageError, match=r"model\.safetensors: cannot write checkpoint \(No space left on device; "
                                           r"about 1\.0 MB of free space is needed\); the previous one is kept"):
        ckpt.save_checkpoint(path, {"w": torch.zeros(1 << 18)}, {"family": "pix2pix", "model_config": {}, "step": 2})
    small_disk.free()
    assert ckpt.load_checkpoint(path).step == 1 and not list(small_disk.folder.glob(".*.tmp"))


def test_full_disk_during_export_and_project_save(tmp_path, small_disk, capsys):
    spec = family_spec("pix2pix", tmp_path)
    spec.train = TrainConfig(steps=1, size=(32, 32), device="cpu", checkpoint_every=1)
    run_training(spec, tmp_path / "run")
    image = tmp_path / "in.png"
    write_image(image, np.full((32, 32, 3), 100, np.uint8))
    project_path = small_disk.folder / "drawing.ganvas"
    canvas = np.zeros((16, 16, 3), np.uint8)
    save_project(project_path, Project(canvas=canvas, model=ModelReference("untrained", "pix2pix")))
    out = small_disk.folder / "out"
    out.mkdir()
    small_disk.fill()
    assert cli(["translate", "--checkpoint", str(tmp_path / "run"), str(image), "--out", str(out)]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out/in.png" in err[0] and "No space left on device" in err[0]
    with pytest.raises(StorageError, match="drawing.ganvas.*No space left on device.*free space is needed"):
        save_project(project_path, Project(canvas=canvas + 1, model=None))
    small_disk.free()
    assert np.array_equal(load_project(project_path).canvas, canvas)  # the old project, intact
    assert not [p for p in out.iterdir()] and not list(small_disk.folder.glob(".*.tmp"))


# --- folders that cannot be written -------------------------------------------------------------------------------------------
def test_unwritable_output_folders_give_one_line(tmp_path, capsys):
    spec = family_spec("pix2pix", tmp_path)
    spec.train = TrainConfig(steps=1, size=(32, 32), device="cpu", checkpoint_every=1)
    run_training(spec, tmp_path / "run")
    (tmp_path / "file").write_text("a file, not a folder")
    image = tmp_path / "in.png"
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    blocked = tmp_path / "file" / "sub"
    commands = {
        "translate": ["translate", "--checkpoint", str(tmp_path / "run"), str(image), "--out", str(blocked)],
        "import-pth": None,
        "train": ["train", "pix2pix", "--data", spec.data.path, "--size", "32", "--depth", "5", "--ngf", "4",
                  "--ndf", "4", "--steps", "1", "--device", "cpu", "--no-progress", "--out", str(blocked)],
        "palette": ["palette", "extract", str(tmp_path / "maps"), "--out", str(blocked / "p.json")],
    }
    write_image(tmp_path / "maps" / "0.png", np.repeat(np.kron(np.eye(2, dtype=np.uint8) * 200, np.ones((8, 8), np.uint8))[:, :, None], 3, 2))
    net = Pix2PixConfig(depth=5, ngf=4)
    from engine.core.registry import get_family

    torch.save(get_family("pix2pix").build_generator(net).state_dict(), tmp_path / "g.pth")
    commands["import-pth"] = ["import-pth", str(tmp_path / "g.pth"), "--out", str(blocked / "g.safetensors"),
                              "pix2pix", "--size", "32", "--depth", "5", "--ngf", "4"]
    for name, command in commands.items():
        assert cli(command) == StorageError.exit_code, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(blocked) in err[0] and "Traceback" not in err[0], (name, err)
    with pytest.raises(StorageError, match="Not a directory"):
        save_project(blocked / "x.ganvas", Project(canvas=np.zeros((4, 4, 3), np.uint8)))
    assert read_image(image).shape == (32, 32, 3)
