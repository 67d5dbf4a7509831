"""Images imported into the canvas: label maps snapped with a report, photos made into edges or sketches."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import ConfigError
from engine.infer.canvas_input import looks_like_line_art, prepare_canvas_image

COLORS = [(0, 0, 255), (255, 0, 0), (0, 255, 0)]


def photo() -> np.ndarray:
    """A smooth colour gradient with a darker square: a 'photo' (few near-white pixels)."""
    y, x = np.mgrid[0:64, 0:64]
    image = np.stack([x * 3, y * 3, np.full_like(x, 120)], axis=2).astype(np.uint8)
    image[20:44, 20:44] //= 3
    return image


def test_label_import_snaps_and_reports_foreign_colours():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:] = (10, 5, 240)  # near class 0 (JPEG-like noise): snapped silently
    rgb[8:16, 8:16] = (250, 250, 250)  # white is far from every class: reported
    result = prepare_canvas_image(rgb, "label", COLORS, "demo")
    assert {tuple(c) for c in result.image.reshape(-1, 3)} <= set(COLORS)
    assert "64 pixels (6.25%)" in result.note and "palette 'demo'" in result.note and "x=8, y=8" in result.note
    clean = prepare_canvas_image(np.full((8, 8, 3), (255, 0, 0), np.uint8), "label", COLORS)
    assert clean.note == "" and (clean.image == (255, 0, 0)).all()


def test_photo_becomes_edges_or_a_sketch_and_line_art_stays():
    edges = prepare_canvas_image(photo(), "edges")
    assert set(np.unique(edges.image)) == {0, 255} and "Canny" in edges.note
    assert (edges.image[20, 20:44] == 0).any()  # the square's border is an edge
    sketch = prepare_canvas_image(photo(), "sketch")
    assert "XDoG" in sketch.note and sketch.image.shape == (64, 64, 3)
    drawing = np.full((64, 64, 3), 255, np.uint8)
    drawing[30:33, 5:60] = (40, 40, 40)
    assert looks_like_line_art(drawing) and not looks_like_line_art(photo())
    kept = prepare_canvas_image(drawing, "edges")
    assert kept.note == "" and kept.image.shape == (64, 64, 3)  # an RGB canvas image, like every other mode's
    assert (kept.image[31, 10] == 0).all() and (kept.image[0, 0] == 255).all()
    assert np.array_equal(prepare_canvas_image(drawing, "sketch").image, drawing)
    assert np.array_equal(prepare_canvas_image(photo(), "photo").image, photo())


def test_bad_mode_and_image_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown canvas mode 'oil'"):
        prepare_canvas_image(photo(), "oil")
    with pytest.raises(ConfigError, match="RGB uint8"):
        prepare_canvas_image(np.zeros((4, 4), np.uint8), "edges")
    with pytest.raises(ConfigError, match="palette colours"):
        prepare_canvas_image(photo(), "label")
