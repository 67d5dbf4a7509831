"""Draw ``assets/samples/facade_labels.png``: a hand-made facade label map in the facades palette.

It is the drawing the app opens on (a three-storey facade: cornice, windows with sills and blinds, a balcony,
moldings, pillars, a shop and a door). Drawn from rectangles, so it is as clean as a canvas drawing; no
dataset image is copied. Run from the repository root: ``python scripts/make_sample_facade.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {c["name"]: c["color"] for c in json.loads((ROOT / "assets/palettes/facades.json").read_text())["classes"]}


def draw() -> np.ndarray:
    image = np.zeros((256, 256, 3), np.uint8)

    def box(name: str, x0: int, y0: int, x1: int, y1: int) -> None:
        image[y0:y1, x0:x1] = COLOURS[name]

    box("background", 0, 0, 256, 256)
    box("facade", 0, 18, 256, 256)
    box("cornice", 0, 18, 256, 28)
    box("pillar", 0, 28, 10, 256)
    box("pillar", 246, 28, 256, 256)
    for y in (86, 160):
        box("molding", 10, y, 246, y + 8)
    columns = (24, 78, 146, 200)
    for top, bottom in ((38, 76), (102, 146)):
        for x in columns:
            box("cornice", x - 3, top - 6, x + 35, top - 1)
            box("window", x, top, x + 32, bottom)
            box("sill", x - 2, bottom, x + 34, bottom + 4)
    for x in (24, 200):  # half-closed blinds on the outer top windows
        box("blind", x, 38, x + 32, 54)
    box("balcony", 70, 132, 186, 150)
    box("shop", 14, 178, 104, 256)
    box("shop", 152, 178, 242, 256)
    box("door", 112, 184, 144, 256)
    box("deco", 110, 172, 146, 180)
    return image


if __name__ == "__main__":
    out = ROOT / "assets/samples/facade_labels.png"
    cv2.imwrite(str(out), cv2.cvtColor(draw(), cv2.COLOR_RGB2BGR))
    print(out)
