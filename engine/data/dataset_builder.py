"""Derive paired datasets from a folder of photos: edges (Canny) or sketches (XDoG) -> photo.

:func:`build_pairs` writes the pix2pix ``aligned`` layout (``A|B`` side by side, A = drawing, B = photo)
under ``dst/train`` and about 10 % under ``dst/val``. Every file is written atomically, so an interrupted
build leaves only whole images behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.core.errors import ConfigError, DatasetError, ImageError
from engine.core.imageio import list_images, read_image, write_image

KINDS = ("edges", "sketch")
CANNY_DEFAULTS = {"low": 100, "high": 200}
XDOG_DEFAULTS = {"sigma": 0.8, "k": 1.6, "p": 20.0, "epsilon": 0.1, "phi": 10.0}  # pencil lines on white
VAL_EVERY = 10  # one file in ten goes to val/


def _grey(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ConfigError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}", value=rgb.shape)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def canny_edges(rgb: np.ndarray, low: float = 100, high: float = 200) -> np.ndarray:
    """Canny edges of ``rgb`` as black lines on white, RGB uint8 of the same size (values 0 and 255)."""
    if not 0 <= low <= high:
        raise ConfigError(f"invalid Canny thresholds low={low}, high={high}: expected 0 <= low <= high",
                          value=(low, high))
    edges = cv2.Canny(_grey(rgb), float(low), float(high))
    return np.repeat((255 - edges)[:, :, None], 3, axis=2)


def xdog_sketch(rgb: np.ndarray, sigma: float = 0.8, k: float = 1.6, p: float = 20.0, epsilon: float = 0.1,
                phi: float = 10.0) -> np.ndarray:
    """An XDoG pencil sketch (Winnemoeller et al., 2012), RGB uint8 of the input size.

    The sharpened difference of Gaussians ``S = (1 + p) * G(sigma) - p * G(k * sigma)`` of the grey image in
    [0, 1] is soft-thresholded: white where ``S >= epsilon``, else ``1 + tanh(phi * (S - epsilon))``.

    Args:
        rgb: (H, W, 3) uint8 image.
        sigma: scale of the finer Gaussian (line thickness).
        k: ratio of the coarser Gaussian's scale to ``sigma``.
        p: sharpening strength (edge emphasis).
        epsilon: threshold: darker values of ``S`` become ink.
        phi: steepness of the soft threshold (large = hard black and white).
    """
    if sigma <= 0 or k <= 1 or phi <= 0 or p < 0:
        raise ConfigError(f"invalid XDoG parameters sigma={sigma}, k={k}, p={p}, phi={phi}: expected "
                          "sigma > 0, k > 1, p >= 0, phi > 0", value=(sigma, k, p, phi))
    grey = _grey(rgb).astype(np.float32) / 255.0
    fine = cv2.GaussianBlur(grey, (0, 0), sigma)
    coarse = cv2.GaussianBlur(grey, (0, 0), sigma * k)
    sharpened = (1.0 + p) * fine - p * coarse
    out = np.where(sharpened >= epsilon, 1.0, 1.0 + np.tanh(phi * (sharpened - epsilon)))
    grey8 = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(grey8[:, :, None], 3, axis=2)


def center_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` (area when shrinking, cubic when enlarging)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top: top + side, left: left + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(square, (size, size), interpolation=interp))


def make_drawing(photo: np.ndarray, kind: str, **params: float) -> np.ndarray:
    """The A side for ``photo``: ``edges`` (params low, high) or ``sketch`` (sigma, k, p, epsilon, phi)."""
    if kind == "edges":
        return canny_edges(photo, **{**CANNY_DEFAULTS, **params})
    if kind == "sketch":
        return xdog_sketch(photo, **{**XDOG_DEFAULTS, **params})
    raise ConfigError(f"invalid kind={kind!r}: expected one of {', '.join(KINDS)}", value=kind)


@dataclass(frozen=True)
class BuildReport:
    """Counts of a :func:`build_pairs` run; ``problems`` are (path, message) of skipped files."""

    train: int
    val: int
    skipped: int
    problems: tuple[tuple[str, str], ...] = ()


def build_pairs(src_folder: str | Path, dst_folder: str | Path, kind: str = "edges", size: int = 256,
                progress: Callable[[int, int], None] | None = None, **params: float) -> BuildReport:
    """Write an aligned A|B dataset (A = edges or sketch, B = photo, both ``size`` px square) from photos.

    Unreadable photos are skipped and reported. Every tenth photo goes to ``dst/val``, the rest to
    ``dst/train``; file names keep the photo's name (sub-folders joined with ``_``) as PNG.

    Raises:
        DatasetError: the source folder is missing or holds no images.
        ConfigError: unknown ``kind`` or invalid parameters.
    """
    src, dst = Path(src_folder), Path(dst_folder)
    if not src.is_dir():
        raise DatasetError("source folder not found", path=src)
    if size < 8:
        raise ConfigError(f"invalid size={size}: expected at least 8", value=size)
    photos = list_images(src, recursive=True)
    if not photos:
        raise DatasetError("no images to build pairs from", path=src)
    make_drawing(np.zeros((8, 8, 3), np.uint8), kind, **params)  # validate before writing anything
    counts = {"train": 0, "val": 0}
    problems: list[tuple[str, str]] = []
    for index, path in enumerate(photos):
        try:
            photo = center_square(read_image(path), size)
        except ImageError as exc:
            problems.append((str(path), str(exc).removeprefix(f"{path}: ")))
        else:
            split = "val" if index % VAL_EVERY == VAL_EVERY - 1 else "train"
            name = "_".join(path.relative_to(src).with_suffix(".png").parts)
            write_image(dst / split / name, np.concatenate([make_drawing(photo, kind, **params), photo], axis=1))
            counts[split] += 1
        if progress is not None:
            progress(index + 1, len(photos))
    return BuildReport(counts["train"], counts["val"], len(problems), tuple(problems))
