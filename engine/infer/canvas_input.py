"""Images imported into the app's canvas, made into what the loaded model draws from.

* ``label`` canvases snap a colour map to the palette and report colours that are not in it (share of
  pixels, an example location) instead of silently recolouring them;
* ``edges`` canvases turn a photo into Canny edges (black on white) and keep line art as line art;
* ``sketch`` canvases turn a photo into an XDoG pencil sketch and keep drawings as they are;
* ``photo`` canvases (CycleGAN and other image-to-image models) keep the image.

Headless (NumPy and OpenCV); the desktop reaches it through its engine API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.errors import ConfigError
from engine.data.dataset_builder import canny_edges, xdog_sketch
from engine.data.labels import DEFAULT_TOLERANCE, index_to_color, snap_to_palette
from engine.data.palette import Palette, PaletteClass

MODES = ("label", "edges", "sketch", "photo")
LINE_ART_WHITE_SHARE = 0.5  # a drawing: at least half its pixels are near white
NEAR_WHITE = 200


@dataclass(frozen=True)
class CanvasImage:
    """An imported image ready for the canvas, and a one-line note for the user (empty when untouched)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    note: str = ""
    # label maps: colours not in the palette, as (colour, pixels, index of the nearest class it was snapped to)
    unknown: tuple[tuple[tuple[int, int, int], int, int], ...] = ()


def looks_like_line_art(rgb: np.ndarray) -> bool:
    """True for drawings on white paper (mostly near-white pixels), False for photos."""
    return float((rgb.min(axis=2) >= NEAR_WHITE).mean()) >= LINE_ART_WHITE_SHARE


def prepare_canvas_image(rgb: np.ndarray, mode: str, palette_colors: Sequence[Sequence[int]] = (),
                         palette_name: str = "canvas", tolerance: float = DEFAULT_TOLERANCE,
                         palette_names: Sequence[str] = ()) -> CanvasImage:
    """Convert an imported RGB image for a canvas in ``mode`` (see the module docstring).

    Args:
        rgb: (H, W, 3) uint8 image, as :func:`engine.core.imageio.read_image` returns it.
        mode: ``label``, ``edges``, ``sketch`` or ``photo``.
        palette_colors: the canvas palette's colours in class order (``label`` mode).
        palette_name: its name, used in the report.
        tolerance: RGB distance beyond which a colour counts as not in the palette.
        palette_names: the classes' names, for the report (default ``class N``).

    Example:
        >>> white = np.full((4, 4, 3), 255, np.uint8)
        >>> prepare_canvas_image(white, "edges").note
        ''
    """
    if mode not in MODES:
        raise ConfigError(f"unknown canvas mode {mode!r}: expected one of {', '.join(MODES)}", value=mode)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ConfigError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}", value=rgb.shape)
    if mode == "label":
        return _snap(rgb, palette_colors, palette_name, tolerance, palette_names)
    if mode == "photo":
        return CanvasImage(rgb)
    if looks_like_line_art(rgb):
        if mode == "edges":  # keep the lines; the edges canvas holds pure black and white only
            ink = rgb.min(axis=2) < 128
            return CanvasImage(np.repeat(np.where(ink, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2))
        return CanvasImage(rgb)
    if mode == "edges":
        return CanvasImage(canny_edges(rgb), "the photo became Canny edges (undo to get it back)")
    return CanvasImage(xdog_sketch(rgb), "the photo became an XDoG pencil sketch (undo to get it back)")


def _snap(rgb: np.ndarray, colors: Sequence[Sequence[int]], name: str, tolerance: float,
          names: Sequence[str] = ()) -> CanvasImage:
    if not colors:
        raise ConfigError("a label canvas needs its palette colours to import a label map", value=colors)
    names = list(names) if len(names) == len(colors) else [f"class {i}" for i in range(len(colors))]
    palette = Palette(name, tuple(PaletteClass(i, names[i], tuple(int(v) for v in c)) for i, c in enumerate(colors)))
    index, report = snap_to_palette(rgb, palette, tolerance, strict=False)
    note = "" if report.ok else report.message() + "; they were snapped to the nearest class"
    table = np.asarray(colors, dtype=np.int32)
    unknown = tuple((tuple(int(v) for v in color), int(count),
                     int(((table - np.asarray(color, dtype=np.int32)) ** 2).sum(1).argmin()))
                    for color, count in report.unknown_colors)
    return CanvasImage(index_to_color(index, palette), note, unknown)
