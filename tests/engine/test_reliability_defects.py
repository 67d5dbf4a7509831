"""Issue 20's defects, each reproduced first: what a hostile or unlucky user hit, and what must happen instead."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine.cli.main import main as cli
from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig, replace
from engine.core.errors import (
    CheckpointError,
    ConfigError,
    ImageError,
    ProjectError,
    StorageError,
    TrainingError,
)
from engine.core.imageio import read_image, write_image
from engine.core.project import load_project
from engine.core.run_log import read_log
from engine.data.dataset_check import preflight
from engine.data.datasets import detect_layout
from engine.families.pix2pix.family import Pix2PixConfig, Pix2PixTrainer
from engine.train.training import RunSpec, _LossLog, run_training, train
from tests.engine.helpers import write_aligned_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = Pix2PixConfig(depth=5, ngf=4, ndf=4)
TINY_FLAGS = ["--size", "32", "--depth", "5", "--ngf", "4", "--ndf", "4", "--device", "cpu", "--no-progress"]


def tiny_spec(data: Path, steps: int = 4, data_options: dict | None = None, **train_options) -> RunSpec:
    options = {"steps": steps, "size": (32, 32), "device": "cpu", "deterministic": True, "sample_every": 100,
               "checkpoint_every": 2, **train_options}
    return RunSpec("pix2pix", TINY, TrainConfig(**options), DataConfig(path=str(data), **(data_options or {})))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A 2-step pix2pix run to translate with and craft headers from."""
    root = tmp_path_factory.mktemp("tiny")
    run_training(tiny_spec(write_aligned_dataset(root / "data"), steps=2), root / "run")
    return root / "run"


def all_finite(checkpoint: ckpt.Checkpoint) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in checkpoint.tensors.values() if t.is_floating_point())


# --- 1. non-finite weights ----------------------------------------------------------------------------------
def test_non_finite_weights_never_reach_a_checkpoint(tmp_path, monkeypatch):
    """A buffer that turns Inf while the losses stay finite (what --lr 1e6 did to batch norm) stops the run at
    the next checkpoint, naming the tensor, and ``latest`` stays the last good step."""
    data = write_aligned_dataset(tmp_path / "d")
    original = Pix2PixTrainer.train_step
    calls = iter(range(100))

    def poison_running_var(self, batch):
        losses = original(self, batch)
        if next(calls) == 2:  # during step 3
            with torch.no_grad():
                for name, buffer in self.nets["G"].named_buffers():
                    if name.endswith("running_var"):
                        buffer.fill_(float("inf"))
                        break
        return losses

    monkeypatch.setattr(Pix2PixTrainer, "train_step", poison_running_var)
    with pytest.raises(TrainingError, match=r"net\.G\..*running_var became non-finite.*step 4.*latest stays at "
                                            r"step 2"):
        run_training(tiny_spec(data, steps=6), tmp_path / "run")
    latest = ckpt.load_checkpoint(tmp_path / "run")
    assert latest.step == 2 and all_finite(latest)
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step_00000002.safetensors"]


def test_extreme_learning_rate_keeps_only_finite_checkpoints(tmp_path):
    data = write_aligned_dataset(tmp_path / "d")
    for lr in (1e12, 1e6):
        run = tmp_path / f"run{lr:g}"
        try:
            spec = tiny_spec(data, steps=6, checkpoint_every=1)
            spec.model = replace(TINY, lr_g=lr, lr_d=lr)
            run_training(spec, run)
        except TrainingError as exc:
            assert "step" in str(exc)
        for path in [run / ckpt.LATEST, *sorted((run / "checkpoints").glob("*.safetensors"))]:
            if path.exists():
                assert all_finite(ckpt.load_checkpoint(path)), path


def test_infinite_learning_rate_is_refused(tmp_path, capsys):
    for value in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="lr_g"):
            Pix2PixConfig(lr_g=value)
    data = write_aligned_dataset(tmp_path / "d")
    assert cli(["train", "pix2pix", "--data", str(data), *TINY_FLAGS, "--lr", "inf", "--out",
                str(tmp_path / "run")]) == 2
    assert "lr" in capsys.readouterr().err


# --- 2. translate never destroys files -----------------------------------------------------------------------
def test_translate_never_overwrites_an_input_or_another_output(tiny_run, tmp_path, capsys):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    images = {name: rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for name in ("photo.png", "a.png")}
    for name, image in images.items():
        write_image(folder / name, image)
    write_image(folder / "a.jpg", images["a.png"])
    write_image(tmp_path / "sub1" / "x.jpg", images["a.png"])
    write_image(tmp_path / "sub2" / "x.jpg", images["a.png"])
    capsys.readouterr()
    assert cli(["translate", "--checkpoint", str(tiny_run), str(folder), "--out", str(folder), "--device",
                "cpu"]) == 0
    for name, image in images.items():
        assert np.array_equal(read_image(folder / name), image), f"input {name} was overwritten"
    outputs = sorted(p.name for p in folder.iterdir())
    assert outputs == ["a-2.png", "a-3.png", "a.jpg", "a.png", "photo-2.png", "photo.png"]
    err = capsys.readouterr().err
    assert "wrote 3 image(s)" in err and "a.jpg -> a-2.png" in err and "a.png -> a-3.png" in err
    out = tmp_path / "out"
    assert cli(["translate", "--checkpoint", str(tiny_run), str(tmp_path / "sub1" / "x.jpg"),
                str(tmp_path / "sub2" / "x.jpg"), "--out", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x-2.png", "x.png"]


def test_translate_with_no_images_is_an_error(tiny_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.jpg").mkdir()
    for item in ("empty", "x.jpg"):
        assert cli(["translate", "--checkpoint", str(tiny_run), str(tmp_path / item), "--out",
                    str(tmp_path / "out")]) == ImageError.exit_code
        assert "holds no images" in capsys.readouterr().err


# --- 3. checkpoint headers of the wrong types ---------------------------------------------------------------
def write_header(path: Path, header: object, tensors: dict[str, torch.Tensor] | None = None) -> Path:
    save_file(tensors or {"w": torch.zeros(1)}, str(path), metadata={"ganvas": json.dumps(header)})
    return path


def crafted_headers(meta: dict) -> dict[str, object]:
    """The header fields a structured fuzz found unchecked, each set to a wrong type or value."""
    def changed(**fields):
        return {**meta, **fields}

    model = meta["model_config"]
    return {
        "list": [meta], "string": "ganvas-checkpoint", "null": None,
        "string step": changed(step="3"), "string config": changed(model_config="ngf=4"),
        "string metrics": changed(metrics="good"), "float ngf": changed(model_config={**model, "ngf": 4.5}),
        "huge ngf": changed(model_config={**model, "ngf": 10**12}), "list family": changed(family=["pix2pix"]),
        "empty size": changed(train_config={**meta["train_config"], "size": []}),
        "string version": changed(format_version="1"), "string dataset": changed(dataset="facades"),
    }


@pytest.mark.parametrize("case", list(crafted_headers({"model_config": {}, "train_config": {}})))
def test_crafted_checkpoint_headers_give_the_checkpoint_error(case, tiny_run, tmp_path, capsys):
    source = ckpt.load_checkpoint(tiny_run)
    header = crafted_headers(source.meta)[case]
    generator = {k: v for k, v in source.tensors.items() if k.startswith("net.G.")}
    path = write_header(tmp_path / "crafted.safetensors", header, generator)
    image = tmp_path / "in.png"
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    info = cli(["info", str(path)])  # anything outside GanvasError would raise here
    info_err = capsys.readouterr().err.strip().splitlines()
    assert info in (0, CheckpointError.exit_code, ConfigError.exit_code) and len(info_err) == int(info != 0)
    code = cli(["translate", "--checkpoint", str(path), str(image), "--out", str(tmp_path / "out"), "--device",
                "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (CheckpointError.exit_code, ConfigError.exit_code), (case, err)
    assert len(err) == 1 and "crafted.safetensors" in err[0], err
    if case == "string version":
        assert "newer" not in err[0] and "not a version number" in err[0]


# --- 4. unwritable --out ------------------------------------------------------------------------------------
def test_unwritable_training_folder_gives_the_storage_error(tmp_path, capsys):
    data = write_aligned_dataset(tmp_path / "d")
    (tmp_path / "file").write_text("not a folder")
    for out in (tmp_path / "file" / "run", Path("/proc/ganvas-run")):
        assert cli(["train", "pix2pix", "--data", str(data), *TINY_FLAGS, "--steps", "1", "--out",
                    str(out)]) == StorageError.exit_code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(out) in err[0] and "run folder" in err[0]


# --- 5. disk full while appending the loss log ---------------------------------------------------------------
def test_full_disk_on_the_loss_log_is_one_error_and_no_torn_line(tmp_path, monkeypatch):
    import builtins

    log = _LossLog(tmp_path / "log.jsonl")
    log.add(1, 1.0, {"G": torch.tensor(1.0)})
    log.flush()

    class FullDisk:
        """A file that takes part of a write, then reports the disk full (as a real partial write does)."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr("engine.train.training.open", lambda *a, **k: FullDisk(builtins.open(*a, **k)), raising=False)
    log.add(2, 1.0, {"G": torch.tensor(2.0)})
    with pytest.raises(StorageError, match="log.jsonl.*No space left on device"):
        log.flush()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]


# --- 6. temp files of killed writes ----------------------------------------------------------------------------
def test_orphan_temp_files_are_removed_when_a_run_resumes(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run")
    orphans = [run / ".latest.safetensors.4242.tmp", run / "checkpoints" / ".step_00000004.safetensors.x1y2.tmp",
               run / ".config.json.abcd.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1000)
    keep = run / "notes.tmp"
    keep.write_text("mine")
    run_training(None, run, resume=True, steps=3)
    assert not any(orphan.exists() for orphan in orphans) and keep.exists()


# --- 7. .pth import messages ------------------------------------------------------------------------------------
class WritesMarker:
    marker = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def malicious_pickle(path: Path, marker: Path) -> Path:
    WritesMarker.marker = str(marker)
    with open(path, "wb") as handle:
        pickle.dump({"w": WritesMarker()}, handle)
    return path


def test_empty_and_malicious_pth_files(tmp_path, capsys):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        ckpt.load_pth_state_dict(tmp_path / "empty.pth")
    evil = malicious_pickle(tmp_path / "evil.pth", tmp_path / "marker")
    assert cli(["import-pth", str(evil), "--out", str(tmp_path / "x.safetensors"), "pix2pix"]) == 5
    err = capsys.readouterr().err
    assert "refused" in err and "weights_only" not in err and not (tmp_path / "marker").exists()


# --- 8. project files -----------------------------------------------------------------------------------------
def project_zip(path: Path, json_bytes: bytes, extra: dict[str, bytes] | None = None) -> Path:
    import cv2

    ok, canvas = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json_bytes)
        archive.writestr("canvas.png", canvas.tobytes())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def lying_npy(shape: tuple[int, ...]) -> bytes:
    """A .npy whose header claims ``shape`` (float32) followed by 8 bytes of data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 8


def test_project_with_lying_latent_header_or_deep_json_is_refused(tmp_path):
    import io

    meta = json.dumps({"format": "ganvas-project", "version": 1}).encode()
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("w.npy", lying_npy((100000, 100000)))
    bomb = project_zip(tmp_path / "bomb.ganvas", meta, {"latent.npz": npz.getvalue()})
    with pytest.raises(ProjectError, match=r"claims shape \(100000, 100000\)"):
        load_project(bomb)
    deep = project_zip(tmp_path / "deep.ganvas", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProjectError, match="nested too deeply"):
        load_project(deep)


# --- 9. the dataset check before training, and a file going bad mid-run ------------------------------------------
def test_cli_train_checks_the_dataset_before_the_first_step(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    for name, (h, w) in {"a": (32, 64), "b": (300, 300), "c": (64, 64), "d": (300, 300)}.items():
        write_image(mixed / f"{name}.png", np.full((h, w, 3), 128, np.uint8))
    assert cli(["train", "pix2pix", "--data", str(mixed), *TINY_FLAGS, "--out", str(tmp_path / "r1")]) == 4
    assert "pix2pix does not train on" in capsys.readouterr().err
    corrupt = write_aligned_dataset(tmp_path / "corrupt", count=4)
    (corrupt / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert cli(["train", "pix2pix", "--data", str(corrupt), *TINY_FLAGS, "--out", str(tmp_path / "r2")]) in (3, 4)
    err = capsys.readouterr().err
    assert "2.png" in err and not (tmp_path / "r2" / ckpt.LATEST).exists()
    write_image(tmp_path / "odd" / "x.png", np.zeros((64, 129, 3), np.uint8))
    assert detect_layout(tmp_path / "odd") == "images"  # as the check says: 129 is not twice 64
    assert preflight(write_aligned_dataset(tmp_path / "fine"), "pix2pix") == [
        f"{tmp_path / 'fine'}: only 4 image(s); at least 10 are recommended"]


def test_a_file_going_bad_mid_run_saves_first(tmp_path):
    data = write_aligned_dataset(tmp_path / "d", count=2)
    run = tmp_path / "run"
    events = train(tiny_spec(data, steps=50, checkpoint_every=100, data_options={"cache": False}), run)
    with pytest.raises(ImageError, match=r"checkpoint saved at step 3"):
        for event in events:
            if event.kind == "step" and event.step == 3:
                for path in data.iterdir():
                    path.write_bytes(b"")
    assert ckpt.load_checkpoint(run).step == 3


# --- 10. a new run and a dead run's log ------------------------------------------------------------------------------
def test_a_new_run_starts_a_fresh_log(tmp_path):
    data = write_aligned_dataset(tmp_path / "d")
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps({"step": s, "D": 1.0}) + "\n" for s in range(1, 337)))
    run_training(tiny_spec(data, steps=2), run)
    assert [record["step"] for record in read_log(run)] == [1, 2]


# --- 11. smaller ones ---------------------------------------------------------------------------------------------------
def test_resume_refuses_another_family(tiny_run, capsys):
    assert cli(["train", "cyclegan", "--resume", str(tiny_run), "--no-progress"]) == ConfigError.exit_code
    assert "is a pix2pix run" in capsys.readouterr().err


def test_sigterm_saves_like_ctrl_c(tmp_path):
    data = write_aligned_dataset(tmp_path / "d")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "engine.cli", "train", "pix2pix", "--data", str(data), *TINY_FLAGS,
               "--steps", "100000", "--out", str(run), "--checkpoint-every", "100000", "--sample-every", "100000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (run / "log.jsonl").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "stopped" in err and "Traceback" not in err, err
    assert 0 < ckpt.load_checkpoint(run).step < 100000


def test_checkpoints_get_normal_file_modes(tiny_run):
    expected = ckpt.default_file_mode()
    assert expected == 0o666 & ~_umask()
    for path in (tiny_run / ckpt.LATEST, *(tiny_run / "checkpoints").iterdir(), tiny_run / "config.json"):
        assert path.stat().st_mode & 0o777 == expected, path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_stylegan2_checkpoint_given_to_translate_names_the_right_command(tmp_path, capsys):
    path = write_header(tmp_path / "sg.safetensors", {"format": "ganvas-checkpoint", "format_version": 1,
                                                      "family": "stylegan2", "model_config": {}})
    write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    assert cli(["translate", "--checkpoint", str(path), str(tmp_path / "in.png"), "--out",
                str(tmp_path / "out")]) == CheckpointError.exit_code
    assert "ganvas generate" in capsys.readouterr().err
