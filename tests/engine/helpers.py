"""Small synthetic datasets and comparisons shared by engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.core.imageio import write_image


def write_aligned_dataset(folder: Path, count: int = 4, size: int = 32, seed: int = 0) -> Path:
    """Aligned A|B images: B is a smooth function of A, so a generator can learn it."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        b = 255 - a
        write_image(folder / f"{index}.png", np.concatenate([a, b], axis=1))
    return folder


def state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
