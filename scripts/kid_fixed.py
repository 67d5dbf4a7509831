"""KID between image folders in fixed feature spaces that need no downloaded weights.

The standard KID uses Inception-v3 features (``ganvas eval --inception FILE``), which this offline machine lacks.
For comparing StyleGAN2 recipes on small sets, this script measures the same unbiased polynomial-kernel MMD
(:func:`engine.infer.fid.kid`) in two spaces that anyone can rebuild:

* ``pixels16``: the image shrunk to 16 x 16 (area interpolation), 768 values in [0, 1]: layout and colour.
* ``h2z``: the 256 pooled features of ``../shared/quality/h2z_classifier.py``'s CNN at 128 px (a fixed network
  trained on horse and zebra photos): edges, texture and blobs. Only a yardstick: never put it in a loss.

Neither is comparable with published KIDs; compare runs with each other, with a real-vs-real split (the floor) and
with the untrained network (the ceiling).

    python scripts/kid_fixed.py --real data/emoji-faces runs/a/samples-500 runs/b/samples-500
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.core.imageio import list_images, read_image
from engine.infer.fid import kid

QUALITY = Path(__file__).resolve().parents[2] / "shared" / "quality"
SPACES = ("pixels16", "h2z")


def load_folder(folder: Path, size: int) -> np.ndarray:
    """Every image under ``folder`` (sub-folders too) as (N, size, size, 3) float32 RGB in [0, 1], on white."""
    paths = list_images(folder, recursive=True)
    if not paths:
        raise SystemExit(f"{folder}: no images")
    images = [cv2.resize(read_image(p), (size, size), interpolation=cv2.INTER_AREA) for p in paths]
    return np.stack(images).astype(np.float32) / 255


def pixel_features(images: np.ndarray) -> np.ndarray:
    """16 x 16 thumbnails, flattened."""
    small = [cv2.resize(im, (16, 16), interpolation=cv2.INTER_AREA) for im in images]
    return np.stack(small).reshape(len(images), -1)


def h2z_features(images: np.ndarray) -> np.ndarray:
    """Pooled features of the horse/zebra classifier at 128 px (its own input normalisation)."""
    spec = importlib.util.spec_from_file_location("h2z_classifier", QUALITY / "h2z_classifier.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"{QUALITY / 'h2z_classifier.py'}: missing (the measuring sticks live in ../shared)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model().eval()
    rgb = [cv2.resize(im, (128, 128), interpolation=cv2.INTER_AREA) for im in images]
    batch = module.to_tensor([np.round(im * 255).astype(np.uint8) for im in rgb])
    with torch.inference_mode():
        return model.features(batch).mean((2, 3)).double().numpy()


FEATURES = {"pixels16": pixel_features, "h2z": h2z_features}


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
