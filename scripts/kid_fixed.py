"""KID between image folders in fixed feature spaces that need no downloaded weights.

The standard KID uses Inception-v3 features (``ganvas eval --inception FILE``), which this offline machine lacks.
For comparing StyleGAN2 recipes on small sets, this script measures the same unbiased polynomial-kernel MMD
(:func:`engine.infer.fid.kid`) in two spaces that anyone can rebuild:

* ``pixels16``: the image shrunk to 16 x 16 (area interpolation), 768 values in [0, 1]: layout and colour.
* ``edges32``: the Sobel gradient magnitude of the grey image, shrunk to 32 x 32: outlines, eyes and mouths.

(The pooled features of ``../shared/quality``'s horse/zebra classifier were tried and dropped: they ranked a
generator that draws one smiley for every seed nearer to the face emoji than the bundled model.)

Neither is comparable with published KIDs; compare runs with each other, with a real-vs-real split (the floor) and
with the untrained network (the ceiling).

    python scripts/kid_fixed.py --real data/emoji-faces runs/a/samples-500 runs/b/samples-500
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from engine.core.imageio import list_images, read_image
from engine.data.datasets import resize_rgb
from engine.infer.fid import kid


def load_folder(folder: Path, size: int) -> np.ndarray:
    """Every image under ``folder`` (sub-folders too) as (N, size, size, 3) float32 RGB in [0, 1], on white."""
    paths = list_images(folder, recursive=True)
    if not paths:
        raise SystemExit(f"{folder}: no images")
    images = [resize_rgb(read_image(p), size, size) for p in paths]
    return np.stack(images).astype(np.float32) / 255


def pixel_features(images: np.ndarray) -> np.ndarray:
    """16 x 16 thumbnails, flattened."""
    small = [cv2.resize(im, (16, 16), interpolation=cv2.INTER_AREA) for im in images]
    return np.stack(small).reshape(len(images), -1)


def edge_features(images: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grey image, shrunk to 32 x 32: where the outlines, eyes and mouths are."""
    maps = []
    for image in images:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        maps.append(cv2.resize(magnitude, (32, 32), interpolation=cv2.INTER_AREA))
    return np.stack(maps).reshape(len(images), -1)


FEATURES = {"pixels16": pixel_features, "edges32": edge_features}
SPACES = tuple(FEATURES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, required=True, help="folder of real images (searched recursively)")
    parser.add_argument("generated", type=Path, nargs="+", help="folders of generated images")
    parser.add_argument("--subsets", type=int, default=100)
    parser.add_argument("--subset-size", type=int, default=1000, help="images per subset (at most the smaller set)")
    parser.add_argument("--size", type=int, default=64, help="size both sets are brought to first")
    args = parser.parse_args()
    real = load_folder(args.real, args.size)
    real_features = {space: FEATURES[space](real) for space in SPACES}
    for folder in args.generated:
        images = load_folder(folder, args.size)
        row: dict[str, object] = {"folder": str(folder), "n": len(images)}
        for space in SPACES:
            result = kid(FEATURES[space](images), real_features[space], args.subsets, args.subset_size)
            row[f"kid_{space}"] = round(result.mean * 1000, 3)
            row[f"kid_{space}_std"] = round(result.std * 1000, 3)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
