"""Draw ``assets/samples/face_sketch.png``: a one-minute face sketch for the bundled sketch -> emoji model.

Black lines on white, as the app's edges pen draws them (aliased, 1-2 px): a round head, two eyes and a smile,
at the model's 128 x 128. Nothing is copied from a dataset. Run from the repository root:
``python scripts/make_sample_face.py``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128


def draw() -> np.ndarray:
    image = np.full((SIZE, SIZE, 3), 255, np.uint8)
    black = (0, 0, 0)
    cv2.circle(image, (64, 66), 54, black, 1)  # head
    cv2.ellipse(image, (45, 52), (6, 10), 0, 0, 360, black, 1)  # eyes
    cv2.ellipse(image, (83, 52), (6, 10), 0, 0, 360, black, 1)
    cv2.ellipse(image, (64, 78), (28, 18), 0, 10, 170, black, 1)  # smile
    cv2.line(image, (37, 81), (91, 81), black, 1)
    return image


if __name__ == "__main__":
    out = ROOT / "assets/samples/face_sketch.png"
    cv2.imwrite(str(out), draw())
    print(f"wrote {out}")
