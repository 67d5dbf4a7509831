"""Keep the drawing when what the canvas draws changes: "Draw as", another model, another palette or size.

:func:`adapt_drawing` turns the drawing as it was (pixels, mode, background, palette) into one for the canvas as
it is now, so nothing is lost silently:

* a blank page stays a blank page (in the new background colour);
* a label map stays as it is when its colours are all in the new palette (e.g. two facades models);
* between edges, sketch and photo the drawing is converted as an imported image would be (a photo becomes
  edges or a sketch, line art stays line art);
* from or to a label map, or into a palette that lacks some of its colours, the user is asked: convert
  (snap to the palette, or keep the colour regions as an image) or start a blank page.

The caller pushes the result as one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from desktop.canvas_tools import Palette, Rgb, is_blank, pack_rgb, quantize_to_palette

if TYPE_CHECKING:
    from engine.api import Engine

MODE_NAMES = {"label": "a label map", "edges": "edges", "sketch": "a sketch", "photo": "a photo"}


@dataclass(frozen=True)
class Drawing:
    """The canvas as it was before a change."""

    pixels: np.ndarray
    mode: str
    background: Rgb
    palette: Palette


def fits_palette(pixels: np.ndarray, palette: Palette) -> bool:
    """Whether every colour of ``pixels`` is one of ``palette``'s."""
    colors = np.unique(pack_rgb(pixels))
    return bool(np.isin(colors, pack_rgb(palette.colors)).all())


def adapt_drawing(before: Drawing, mode: str, background: Rgb, palette: Palette,
                  canvas_input: Engine | None, ask: Callable[[str], bool]) -> np.ndarray:
    """The drawing ``before`` made into one for a canvas drawing ``mode`` (see the module docstring).

    ``ask(question)`` returns True to convert, False for a blank page.
    """
    pixels = before.pixels
    blank_page = np.empty_like(pixels)
    blank_page[...] = background
    if is_blank(pixels, before.background):
        return blank_page
    if mode == "label":
        if fits_palette(pixels, palette):
            return pixels
        what = "label map is drawn in another palette" if before.mode == "label" else \
            f"drawing is {MODE_NAMES.get(before.mode, before.mode)}"
        question = (f"The canvas now draws label maps, but the {what}.\n\nConvert it (each colour becomes the "
                    "nearest class of the palette), or start a blank page?")
        return quantize_to_palette(pixels, palette) if ask(question) else blank_page
    if before.mode == "label":
        question = (f"The canvas now draws {MODE_NAMES.get(mode, mode)}, but holds a label map.\n\nConvert it "
                    "(its regions become the new drawing), or start a blank page?")
        if not ask(question):
            return blank_page
    if canvas_input is None or mode == before.mode:
        return pixels
    return canvas_input.prepare_canvas_image(pixels, mode).image
