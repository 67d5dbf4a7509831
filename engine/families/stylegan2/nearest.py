"""Generated samples beside their nearest training images: does a GAN make new images or copy its data?

Distances are pixel RMS on the 0-255 scale at the generator's resolution, after the same compositing, square
crop and resize that training applied. A copied image sits near 0; the StyleGAN2 emoji run's samples sit at
36-60 from their nearest emoji.

Example:
    >>> samples = np.zeros((2, 8, 8, 3), np.uint8)
    >>> images = np.stack([np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 3), 10, np.uint8)])
    >>> index, rms = nearest_images(samples, images)
    >>> index.tolist(), rms.round(1).tolist()
    ([1, 1], [10.0, 10.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.config import DataConfig
from engine.core.errors import ConfigError


@dataclass(frozen=True)
class NearestReport:
    """For each sample: the index and file of the nearest training image, and its RMS distance (0-255)."""

    indices: np.ndarray  # (N,) int64
    files: list[Path]
    rms: np.ndarray  # (N,) float64

    @property
    def median(self) -> float:
        return float(np.median(self.rms))

    @property
    def minimum(self) -> float:
        return float(self.rms.min())


def nearest_images(samples: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the closest image and the pixel RMS distance to it, for every sample.

    Args:
        samples: (N, H, W, 3) uint8.
        images: (M, H, W, 3) uint8, the same H and W.

    Returns:
        (N,) int64 indices into ``images`` and (N,) float64 distances on the 0-255 scale.

    Raises:
        ConfigError: the shapes differ or ``images`` is empty.
    """
    if samples.shape[1:] != images.shape[1:] or samples.ndim != 4 or not len(images):
        raise ConfigError(f"cannot compare samples {samples.shape} with training images {images.shape}")
    flat = images.reshape(len(images), -1).astype(np.float32)
    indices, distances = [], []
    for sample in samples.reshape(len(samples), -1).astype(np.float32):
        mse = ((flat - sample) ** 2).mean(1)
        best = int(mse.argmin())
        indices.append(best)
        distances.append(float(np.sqrt(mse[best])))
    return np.asarray(indices, np.int64), np.asarray(distances, np.float64)


def load_training_images(folder: str | Path, resolution: int, background: tuple[int, int, int] = (255, 255, 255)
                         ) -> tuple[list[Path], np.ndarray]:
    """Every image under ``folder`` as StyleGAN2 training saw it: (files, (M, R, R, 3) uint8).

    Raises:
        DatasetError: no images, or an unreadable one (named).
    """
    from engine.families.stylegan2.family import FolderImages

    data = DataConfig(path=str(folder), background=tuple(background), cache=False)
    dataset = FolderImages(folder, data, resolution)
    images = np.stack([dataset[i].permute(1, 2, 0).numpy() for i in range(len(dataset))])
    return list(dataset.files), images


def nearest_report(samples: np.ndarray, files: list[Path], images: np.ndarray) -> NearestReport:
    """:func:`nearest_images` with the matched files."""
    indices, rms = nearest_images(samples, images)
    return NearestReport(indices, [files[i] for i in indices], rms)


def side_by_side(samples: np.ndarray, matches: np.ndarray, columns: int = 4, gap: int = 4) -> np.ndarray:
    """A uint8 grid of (sample | nearest image) pairs, ``columns`` pairs per row, on white."""
    count, size = len(samples), samples.shape[1]
    rows = -(-count // columns)
    pair_width = 2 * size + gap // 2
    grid = np.full((rows * (size + gap) + gap, columns * (pair_width + gap) + gap, 3), 255, np.uint8)
    for i, (sample, match) in enumerate(zip(samples, matches, strict=True)):
        top = gap + (i // columns) * (size + gap)
        left = gap + (i % columns) * (pair_width + gap)
        grid[top: top + size, left: left + size] = sample
        grid[top: top + size, left + size + gap // 2: left + pair_width] = match
    return grid
