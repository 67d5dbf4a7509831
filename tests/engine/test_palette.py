"""Palettes and label maps: JSON round trip, validation, snapping, readers, extraction, one-hot."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.core.errors import ConfigError, DatasetError, LabelError
from engine.core.imageio import list_images, read_image, write_image
from engine.data.labels import (
    DEFAULT_TOLERANCE,
    convert_color_maps,
    extract_palette,
    index_to_color,
    one_hot,
    read_label_map,
    snap_to_palette,
)
from engine.data.palette import Palette, PaletteClass, list_palettes

COLORS = [(0, 0, 0), (255, 255, 255), (220, 30, 30), (30, 60, 220), (250, 200, 20)]


def make_palette(colors=COLORS, **kwargs) -> Palette:
    classes = tuple(PaletteClass(i, f"c{i}", c) for i, c in enumerate(colors))
    return Palette(name="test", classes=classes, **kwargs)


def blocky_index_map(n_classes: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Rectangles of random classes on class 0, like a hand-drawn label map."""
    rng = np.random.default_rng(seed)
    index = np.zeros((size, size), dtype=np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, size - 8, 2)
        h, w = rng.integers(6, size // 3, 2)
        index[y:y + h, x:x + w] = rng.integers(1, n_classes)
    return index


# -- palette data --------------------------------------------------------------------------------------


def test_palette_json_round_trip(tmp_path: Path) -> None:
    palette = make_palette(background=1, dont_care=255, dont_care_color=(128, 128, 128))
    path = palette.save(tmp_path / "sub" / "p.json")
    assert not list(path.parent.glob(".*tmp"))  # atomic write leaves no temp file
    loaded = Palette.load(path)
    assert loaded == palette
    assert loaded.colors.shape == (5, 3) and loaded.colors.dtype == np.uint8
    assert loaded.names == ["c0", "c1", "c2", "c3", "c4"]
    assert loaded.index_of("c3") == 3


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["classes"][1].update(id=0), "duplicate class ids"),
    (lambda d: d["classes"][2].update(color=d["classes"][0]["color"]), "share the colour"),
    (lambda d: d["classes"].pop(1), "contiguous"),
    (lambda d: d.update(background=9), "background id 9"),
    (lambda d: d["classes"][0].update(color=[0, 0, 300]), "three integers 0..255"),
    (lambda d: d.update(dont_care=3), "dont_care id"),
])
def test_palette_validation_names_the_file(tmp_path: Path, mutate, expected: str) -> None:
    data = make_palette().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=expected) as info:
        Palette.load(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_palette_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bundled palettes: .*facades"):
        Palette.load("no-such-palette")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        Palette.load(broken)
    assert info.value.path == broken


def test_bundled_facades_palette() -> None:
    assert "facades" in list_palettes()
    palette = Palette.load("facades")
    assert palette.names == ["background", "facade", "window", "door", "cornice", "sill", "balcony", "blind",
                             "deco", "molding", "pillar", "shop"]
    assert palette.background == 0 and palette.source


# -- snapping ------------------------------------------------------------------------------------------


def test_snap_recovers_indices_under_noise() -> None:
    palette = make_palette()
    index = blocky_index_map(palette.n_classes, size=128)
    rgb = index_to_color(index, palette).astype(np.int16)
    noise = np.random.default_rng(1).integers(-12, 13, rgb.shape)
    noisy = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    snapped = snap_to_palette(noisy, palette)
    assert snapped.dtype == np.uint8 and snapped.shape == index.shape
    np.testing.assert_array_equal(snapped, index)


def test_unknown_colour_is_reported_with_share_and_location(tmp_path: Path) -> None:
    palette = make_palette()
    index = np.zeros((50, 40), dtype=np.uint8)
    rgb = index_to_color(index, palette)
    rgb[10:20, 5:15] = (0, 255, 0)  # 100 green pixels = 5% of 2000
    path = tmp_path / "map.png"
    with pytest.raises(LabelError) as info:
        snap_to_palette(rgb, palette, path=path)
    message = str(info.value)
    assert str(path) in message
    assert "5.00%" in message and "x=5, y=10" in message and "[0, 255, 0]" in message
    assert info.value.value.n_unknown == 100

    snapped, report = snap_to_palette(rgb, palette, strict=False)
    assert not report.ok and report.n_unknown == 100 and report.share == pytest.approx(0.05)
    assert report.example_xy == (5, 10) and report.example_color == (0, 255, 0)
    assert snapped.shape == (50, 40)


def test_edge_blends_and_specks_are_not_unknown() -> None:
    palette = make_palette()
    index = np.zeros((64, 64), dtype=np.uint8)
    index[:, 32:] = 1
    rgb = index_to_color(index, palette)
    rgb = cv2.GaussianBlur(rgb, (5, 5), 1.5)  # black|white border becomes a grey ramp
    rgb[5, 5] = (0, 255, 0)  # a single foreign speck
    snapped, report = snap_to_palette(rgb, palette, strict=False)
    assert report.ok, report.message()
    assert (snapped[:, :28] == 0).all() and (snapped[:, 36:] == 1).all()


def test_default_tolerance_catches_green_on_facades() -> None:
    facades = Palette.load("facades")
    rgb = index_to_color(np.ones((32, 32), dtype=np.uint8), facades)
    rgb[8:16, 8:16] = (0, 255, 0)
    with pytest.raises(LabelError, match="6.25%"):
        snap_to_palette(rgb, facades)
    assert DEFAULT_TOLERANCE < 175  # pure green is about 175 from the facades colours and their blends


def test_dont_care_colour_snaps_to_dont_care_id() -> None:
    palette = make_palette(dont_care=255, dont_care_color=(128, 0, 128))
    index = blocky_index_map(palette.n_classes)
    index[:4] = 255
    rgb = index_to_color(index, palette)
    assert (rgb[:4] == (128, 0, 128)).all()
    np.testing.assert_array_equal(snap_to_palette(rgb, palette), index)


# -- readers -------------------------------------------------------------------------------------------


def test_index_colour_and_aligned_readers_agree(tmp_path: Path) -> None:
    palette = make_palette()
    index = blocky_index_map(palette.n_classes, size=128, seed=3)
    color = index_to_color(index, palette)
    write_image(tmp_path / "index.png", index)
    write_image(tmp_path / "color.png", color)
    photo = np.random.default_rng(0).integers(0, 256, color.shape, dtype=np.uint8)
    aligned = np.concatenate([photo, color], axis=1)
    ok, encoded = cv2.imencode(".jpg", aligned[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    (tmp_path / "aligned.jpg").write_bytes(encoded.tobytes())

    from_index = read_label_map(tmp_path / "index.png", palette)  # auto: single-channel PNG
    from_color = read_label_map(tmp_path / "color.png", palette)  # auto: RGB PNG
    from_aligned = read_label_map(tmp_path / "aligned.jpg", palette, "color", aligned_half="right")
    np.testing.assert_array_equal(from_index, index)
    np.testing.assert_array_equal(from_color, index)
    assert (from_aligned == index).mean() >= 0.99
    np.testing.assert_array_equal(read_label_map(tmp_path / "index.png", palette, "index"), index)


def test_index_reader_rejects_ids_outside_palette(tmp_path: Path) -> None:
    palette = make_palette(dont_care=255)
    index = np.zeros((10, 10), dtype=np.uint8)
    index[0, :5] = 7
    index[1, :2] = 255  # the don't-care id is allowed
    path = write_image(tmp_path / "bad.png", index)
    with pytest.raises(LabelError, match=r"5 pixels \(5.00%\) have ids 7") as info:
        read_label_map(path, palette)
    assert info.value.path == path and info.value.value == [7]


def test_index_to_color_rejects_unknown_ids() -> None:
    with pytest.raises(LabelError, match="ids 9"):
        index_to_color(np.full((2, 2), 9, dtype=np.uint8), make_palette())


# -- extraction and conversion -------------------------------------------------------------------------


def test_extract_palette_finds_the_colours(tmp_path: Path) -> None:
    palette = make_palette()
    rng = np.random.default_rng(5)
    for i in range(4):
        index = blocky_index_map(palette.n_classes, size=96, seed=i)
        rgb = index_to_color(index, palette).astype(np.int16) + rng.integers(-3, 4, (96, 96, 3))
        rgb = cv2.GaussianBlur(np.clip(rgb, 0, 255).astype(np.uint8), (3, 3), 0.8)  # soft edges
        ok, encoded = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        (tmp_path / f"{i}.jpg").write_bytes(encoded.tobytes())
    found = extract_palette(tmp_path)
    assert found.n_classes == palette.n_classes
    assert found.names[0] == "class_0" and found.colors[0].max() <= 4  # the most common colour, black, first
    for color in palette.colors.astype(int):
        assert np.abs(found.colors.astype(int) - color).max(axis=1).min() <= 4
    assert extract_palette(tmp_path, n_colors=2).n_classes == 2
    with pytest.raises(DatasetError, match="fewer than n_colors"):
        extract_palette(tmp_path, n_colors=9)


def test_extract_palette_refuses_photos(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "photo.png", cv2.resize(noise, (256, 256), interpolation=cv2.INTER_CUBIC))
    with pytest.raises(DatasetError, match="more than 4 distinct colours"):
        extract_palette(tmp_path, max_colors=4, min_share=0.0)


def test_convert_color_maps(tmp_path: Path) -> None:
    palette = make_palette()
    src, dst = tmp_path / "src", tmp_path / "dst"
    indices = [blocky_index_map(palette.n_classes, seed=i) for i in range(3)]
    for i, index in enumerate(indices):
        photo = np.zeros((64, 64, 3), dtype=np.uint8)
        write_image(src / f"{i}.png", np.concatenate([photo, index_to_color(index, palette)], axis=1))
    report = convert_color_maps(src, dst, palette, aligned_half="right")
    assert report.n_written == 3 and not report.unknown
    assert sum(report.counts) == 3 * 64 * 64
    for i, index in enumerate(indices):
        np.testing.assert_array_equal(read_label_map(dst / f"{i}.png", palette, "index"), index)

    bad = index_to_color(indices[0], palette)
    bad[:8, :8] = (0, 255, 0)
    write_image(src / "3.png", np.concatenate([np.zeros_like(bad), bad], axis=1))
    with pytest.raises(LabelError, match="3.png"):
        convert_color_maps(src, tmp_path / "strict", palette, aligned_half="right")
    loose = convert_color_maps(src, tmp_path / "loose", palette, aligned_half="right", strict=False)
    assert loose.n_written == 4 and [r.path.name for r in loose.unknown] == ["3.png"]
    with pytest.raises(DatasetError, match="source folder"):
        convert_color_maps(src, src, palette)


# -- one-hot -------------------------------------------------------------------------------------------


def test_one_hot_with_dont_care() -> None:
    index = torch.tensor([[[0, 1], [2, 255]]])
    out = one_hot(index, 3, dont_care=255)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.float32
    assert out[0, :, 1, 1].sum() == 0
    assert out.argmax(1)[0, 0].tolist() == [0, 1] and out[0, 2, 1, 0] == 1
    assert out.sum(1)[0].tolist() == [[1, 1], [1, 0]]
    with pytest.raises(LabelError, match=r"ids \[255\]"):
        one_hot(index, 3)


# -- real data -----------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_facades_label_halves_snap_with_shipped_palette(shared_data: Path) -> None:
    palette = Palette.load("facades")
    files = list_images(shared_data / "facades" / "train")[:5]
    assert len(files) == 5
    present = np.zeros(palette.n_classes, dtype=bool)
    for file in files:
        index = read_label_map(file, palette, "color", aligned_half="right")  # raises LabelError if unknown
        assert index.shape == (256, 256)
        present |= np.bincount(index.reshape(-1), minlength=palette.n_classes) > 50
        # the facade class covers much of the map; sanity-check the colour/class assignment
        assert (index == palette.index_of("facade")).mean() > 0.1
        rgb = read_image(file)[:, 256:]
        assert np.abs(index_to_color(index, palette).astype(int) - rgb).mean() < 20
    assert present.sum() >= 8, [n for n, p in zip(palette.names, present, strict=True) if p]


def test_palette_from_entries_is_the_canvas_palette():
    """The app's canvas draws in this type too: built from (name, colour) pairs, looked up by colour."""
    palette = Palette.from_entries([("void", (0, 0, 0)), ("sky", (70, 130, 180)), ("tree", [107, 142, 35])],
                                   background=1, name="canvas")
    assert palette.entries == [("void", (0, 0, 0)), ("sky", (70, 130, 180)), ("tree", (107, 142, 35))]
    assert Palette.from_entries(palette.entries, background=1, name="canvas") == palette
    assert palette.background_color == (70, 130, 180)
    assert palette.id_of_color((107, 142, 35)) == 2 and palette.id_of_color(np.array([70, 130, 180])) == 1
    assert palette.id_of_color((1, 2, 3)) is None
    with pytest.raises(ConfigError, match="share the colour"):
        Palette.from_entries([("a", (1, 1, 1)), ("b", (1, 1, 1))])
    with pytest.raises(ConfigError, match="background id 3"):
        Palette.from_entries(palette.entries, background=3)
