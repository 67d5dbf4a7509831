"""Dataset check, pair builder (Canny/XDoG) and the JSON-lines training process, on tiny synthetic data."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.core.config import DataConfig, TrainConfig, to_dict
from engine.core.imageio import write_image
from engine.data.dataset_builder import build_pairs, canny_edges, xdog_sketch
from engine.data.dataset_check import check_dataset, classify_drawing
from engine.data.datasets import PairedImages, pair_files
from tests.engine.helpers import write_aligned_dataset

ROOT = Path(__file__).resolve().parents[2]


def _photo(size: int = 32, seed: int = 0) -> np.ndarray:
    """A bright square on a dark background plus a little noise: clear edges."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 40, np.uint8)
    image[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = (220, 180, 90)
    return np.clip(image + rng.integers(0, 8, image.shape), 0, 255).astype(np.uint8)


def _write_folder(folder: Path, count: int, size: tuple[int, int] = (32, 32)) -> None:
    for i in range(count):
        write_image(folder / f"{i}.png", np.resize(_photo(max(size), i), (*size, 3)))


@pytest.mark.parametrize("layout", ["aligned", "paired", "unaligned", "labels+images", "images"])
def test_layouts_are_detected(tmp_path: Path, layout: str) -> None:
    if layout == "aligned":
        write_aligned_dataset(tmp_path / "train", count=10)
        write_aligned_dataset(tmp_path / "val", count=2)
    else:
        names = {"paired": ("A", "B"), "unaligned": ("trainA", "trainB"), "labels+images": ("labels", "images"),
                 "images": ("",)}[layout]
        for name in names:
            _write_folder(tmp_path / name, 10)
    report = check_dataset(tmp_path)
    assert report.layout == layout
    assert report.problems == (), report.problems
    assert len(report.preview) == 6
    assert sum(v for k, v in report.counts.items() if k != "val") >= 10
    if layout == "aligned":
        assert report.counts == {"images": 10, "val": 2} and report.fits == ("pix2pix",)
    if layout in ("unaligned", "images"):
        assert report.fits == {"unaligned": ("cyclegan",), "images": ("stylegan2",)}[layout]


def test_problems_of_a_broken_set(tmp_path: Path) -> None:
    _write_folder(tmp_path / "A", 4)
    _write_folder(tmp_path / "B", 3, size=(32, 32))
    write_image(tmp_path / "B" / "2.png", _photo(48))  # mixed size
    (tmp_path / "A" / "empty.png").write_bytes(b"")
    write_image(tmp_path / "B" / "empty.png", _photo())
    jpg = tmp_path / "A" / "cut.jpg"
    write_image(jpg, _photo())
    jpg.write_bytes(jpg.read_bytes()[:200])
    report = check_dataset(tmp_path)
    assert report.layout == "paired"
    messages = {Path(path).name: message for path, message in report.problems}
    assert "empty" in messages["empty.png"]
    assert "truncated" in messages["cut.jpg"]
    assert "no file named 3" in messages["3.png"]
    assert "differs" in messages["2.png"]
    assert "recommended" in messages[tmp_path.name]
    assert not report.ok


def test_builder_writes_a_valid_aligned_dataset(tmp_path: Path) -> None:
    _write_folder(tmp_path / "photos", 11, size=(40, 56))
    (tmp_path / "photos" / "bad.jpg").write_bytes(b"not an image")
    calls = []
    report = build_pairs(tmp_path / "photos", tmp_path / "out", "sketch", size=32,
                         progress=lambda done, total: calls.append((done, total)))
    assert (report.train, report.val, report.skipped) == (10, 1, 1)
    assert calls[-1] == (12, 12)
    layout, pairs = pair_files(tmp_path / "out" / "train")
    assert layout == "aligned" and len(pairs) == 10
    data = PairedImages(tmp_path / "out" / "train", DataConfig(preprocess="none"), (32, 32))
    assert data.validate() == [] and data[0].shape == (6, 32, 32)
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert check_dataset(tmp_path / "out").layout == "aligned"


def test_canny_and_xdog_outputs() -> None:
    photo = _photo(40)[:, :36]
    edges = canny_edges(photo, 50, 150)
    sketch = xdog_sketch(photo, sigma=0.8, k=1.6, p=20, epsilon=0.6, phi=10)
    for out in (edges, sketch):
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert set(np.unique(edges)) == {0, 255}
    assert (edges[0:5, 0:5] == 255).all()  # flat background: no edges
    assert sketch.min() < 100 and sketch.max() == 255


def test_train_process_emits_json_and_stops_on_file(tmp_path: Path) -> None:
    data = write_aligned_dataset(tmp_path / "data", count=2)
    spec = {"family": "pix2pix",
            "model_config": {"ngf": 4, "ndf": 4, "depth": 5, "n_layers_d": 1},
            "train_config": to_dict(TrainConfig(steps=1000, size=(32, 32), device="cpu", sample_every=2,
                                                checkpoint_every=1000)),
            "data_config": to_dict(DataConfig(path=str(data), preprocess="none"))}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "engine.train.train_process", "--spec", str(spec_path), str(run_dir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["kind"] == "sample":
            (run_dir / "stop").write_text("")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and "step" in kinds and kinds[-1] == "stopped"
    assert events[-1]["step"] >= 2 and events[-1]["total"] == 1000
    assert events[1]["device"].startswith("cpu") and events[1]["memory_mb"] > 0
    assert (run_dir / "latest.safetensors").is_file() and not (run_dir / "stop").exists()
    assert (run_dir / "samples" / "latest.png").is_file()


def test_train_process_reports_a_malformed_retune_as_one_error_line(tmp_path: Path, capsys) -> None:
    from engine.train.train_process import run

    args = argparse.Namespace(resume=True, spec=None, steps=None, retune="{r1_gamma: 0.1", run_dir=str(tmp_path))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run(args, sys.stdout) != 0
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["kind"] == "error" and record["error"] == "ConfigError"
    assert record["message"].startswith("--retune is not valid JSON") and not record["oom"]


def test_the_check_tells_the_drawing_side_from_the_photo(tmp_path: Path) -> None:
    from engine.data.palette import Palette

    colors = Palette.load("facades").colors
    for index in range(3):
        photo = _photo(32, index)
        labels = colors[np.arange(32 * 32).reshape(32, 32) // 256 + 1]
        write_image(tmp_path / "labels" / "train" / f"{index}.png", np.concatenate([photo, labels], axis=1))
    report = check_dataset(tmp_path / "labels")
    assert report.sides == {"A": "photo", "B": "label"} and report.palette == "facades"
    assert (report.direction, report.input_kind()) == ("BtoA", "label")
    assert any("only 3 image(s)" in message for _, message in report.problems)
    assert any("no validation split" in n for n in report.notes)
    build_pairs(tmp_path / "labels" / "train", tmp_path / "edges", "edges", 32)
    report = check_dataset(tmp_path / "edges")
    assert report.sides["A"] == "edges" and report.direction == "AtoB" and report.input_kind() == "edges"
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.float32), (0, 0), 3)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    assert classify_drawing(xdog_sketch(texture)) == ("sketch", "")
    assert (xdog_sketch(texture).mean(2) > 200).mean() > 0.6  # pencil lines on white, not a black blob
    assert classify_drawing(_photo(64)) == ("photo", "")


def test_dataset_commands_check_and_build(tmp_path: Path, capsys) -> None:
    from engine.cli.main import main as cli
    from engine.data.palette import Palette

    _write_folder(tmp_path / "photos", 3)
    assert cli(["dataset", "build", "sketch", str(tmp_path / "photos"), str(tmp_path / "pairs"), "--size", "32",
                "--no-progress"]) == 0
    assert len(list((tmp_path / "pairs" / "train").glob("*.png"))) == 3
    assert cli(["dataset", "check", str(tmp_path / "pairs"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "layout:   aligned" in out and "A = sketch, B = photo" in out and "--direction AtoB" in out
    assert "no validation split" in out
    colors = Palette.load("facades").colors
    write_image(tmp_path / "maps" / "m.png", colors[np.arange(16 * 16).reshape(16, 16) // 64 + 1])
    assert cli(["dataset", "build", "labels", str(tmp_path / "maps"), str(tmp_path / "ids"), "--palette", "facades",
                "--no-progress"]) == 0
    assert sorted(np.unique(read_image_unchanged(tmp_path / "ids" / "m.png"))) == [1, 2, 3, 4]
    assert cli(["dataset", "check", str(tmp_path / "missing"), "--no-progress"]) != 0


def read_image_unchanged(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.mark.realdata
def test_facades_fit_pix2pix_and_spade(shared_data: Path) -> None:
    """Photo | label-map pairs train both pix2pix and SPADE (SPADE reads the label half), so neither is refused."""
    from engine.data.dataset_check import preflight

    report = check_dataset(shared_data / "facades")
    assert report.layout == "aligned" and report.fits == ("pix2pix", "spade")
    assert preflight(shared_data / "facades", "spade") is not None


def test_the_size_cache_is_per_dataset_and_holds_only_its_current_files(tmp_path, monkeypatch):
    """A second check decodes nothing; each dataset has its own cache file, so checks never read others'."""
    import engine.data.dataset_check as dataset_check

    monkeypatch.setenv("GANVAS_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "one", tmp_path / "two"
    _write_folder(first / "images", 6)
    _write_folder(second / "images", 3)
    check_dataset(first)
    check_dataset(second)
    caches = sorted((tmp_path / "cache" / dataset_check.SIZE_CACHE_DIR).glob("*.json"))
    assert sorted(len(json.loads(p.read_text())) for p in caches) == [3, 6]
    decoded = []
    monkeypatch.setattr(dataset_check, "read_image", lambda path: decoded.append(path))
    check_dataset(first)
    assert decoded == []
    (first / "images" / "0.png").unlink()
    check_dataset(first)  # the removed file leaves the cache
    assert sorted(len(json.loads(p.read_text())) for p in caches) == [3, 5]


def _label_pairs(folder: Path, colors: np.ndarray, count: int = 3, size: int = 32) -> Path:
    """Aligned label map | photo pairs whose label half is 8 x 8 blocks of ``colors``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(count):
        blocks = colors[rng.integers(0, len(colors), (size // 8, size // 8))]
        labels = np.kron(blocks, np.ones((8, 8, 1))).astype(np.uint8)
        write_image(folder / f"{index}.png", np.concatenate([labels, _photo(size, index)], axis=1))
    return folder


def test_label_maps_in_another_palette_than_the_models_are_refused(tmp_path):
    """A model that draws in one palette must not train on label maps of another: the same colours would name
    other classes. The preflight (before any run, fine-tuning included) names the dataset and both palettes."""
    from engine.core.errors import DatasetError
    from engine.data.dataset_check import palette_mismatch, preflight
    from engine.data.palette import Palette

    facades = Palette.load("facades")
    data = _label_pairs(tmp_path / "data", facades.colors)
    assert check_dataset(data).palette == "facades"
    other = {"name": "greys", "classes": [{"id": i, "name": f"c{i}", "color": [i * 20, i * 20, i * 20]}
                                         for i in range(len(facades.classes))]}
    (tmp_path / "greys.json").write_text(json.dumps(other))
    assert palette_mismatch("facades", "facades") == "" and palette_mismatch("", "facades") == ""
    assert "drawn in the facades palette, but the model draws in greys" in palette_mismatch(
        str(tmp_path / "greys.json"), "facades")
    assert all("recommended" in note for note in preflight(data, "pix2pix", palette="facades"))  # a small set
    with pytest.raises(DatasetError, match=r"data: its label maps are drawn in the facades palette, but the model "
                                           r"draws in greys"):
        preflight(data, "pix2pix", palette=str(tmp_path / "greys.json"))


def test_label_maps_in_the_users_own_palette_are_recognised(tmp_path):
    """Label maps in a palette of the user's (not bundled) read as photos unless that palette is named; named, they
    are label maps in it, so a model drawing in it trains on them, and a model of another palette is told why not."""
    from engine.data.dataset_check import palette_mismatch, preflight

    colors = np.array([[250, 20, 120], [20, 230, 200], [120, 60, 10], [90, 90, 250]], np.uint8)
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"name": "mine", "classes": [
        {"id": i, "name": f"c{i}", "color": color.tolist()} for i, color in enumerate(colors)]}))
    data = _label_pairs(tmp_path / "data", colors)
    unnamed = check_dataset(data)
    assert unnamed.sides == {"A": "photo", "B": "photo"} and unnamed.palette == ""
    named = check_dataset(data, palette=str(own))
    assert named.sides == {"A": "label", "B": "photo"} and named.palette == str(own)
    assert named.direction == "AtoB" and named.input_kind() == "label"
    assert all("recommended" in note for note in preflight(data, "pix2pix", palette=str(own)))
    assert "drawn in the mine palette, but the model draws in facades" in palette_mismatch("facades", str(own))
