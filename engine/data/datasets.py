"""Dataset folders: layout detection, paired image sources, caching and a resumable sampler.

Layouts (see ``docs/datasets.md``):

* ``aligned``: each image holds A on the left half and B on the right half (pix2pix ``facades``).
* ``paired``: folders ``A/`` and ``B/`` whose files match by name (stem).
* ``unaligned``: folders ``trainA/`` and ``trainB/`` (CycleGAN); no pairing.
* ``images``: any folder of images (recursive).

A folder with ``train/`` (and optionally ``val/`` or ``test/``) sub-folders is read through its ``train`` split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.core.config import DataConfig
from engine.core.errors import DatasetError, ImageError
from engine.core.imageio import list_images, read_image

LAYOUTS = ("aligned", "paired", "unaligned", "images")
MIN_IMAGES = 1


def split_folder(root: str | Path, split: str = "train") -> Path:
    """``root/split`` when it exists (``val`` falls back to ``test``), else ``root`` itself for ``train``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("dataset folder not found", path=root)
    candidates = [split] + (["test"] if split == "val" else [])
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    if split == "train":
        return root
    raise DatasetError(f"dataset has no {split!r} split folder", path=root)


def detect_layout(folder: str | Path) -> str:
    """Guess the layout of ``folder`` (already resolved to a split)."""
    folder = Path(folder)
    if (folder / "A").is_dir() and (folder / "B").is_dir():
        return "paired"
    if (folder / "trainA").is_dir() and (folder / "trainB").is_dir():
        return "unaligned"
    files = list_images(folder)
    if files:
        h, w = _image_size(files[0])
        if w == 2 * h:
            return "aligned"
        return "images"
    if list_images(folder, recursive=True):
        return "images"
    raise DatasetError("no images found (expected JPEG/PNG/BMP/TIFF/WebP files or A/ B/ folders)", path=folder)


def _image_size(path: Path) -> tuple[int, int]:
    """The exact (height, width): a half-size decode would round 129x64 to an A|B pair (130x64)."""
    return read_image(path).shape[:2]


def default_load_size(size: tuple[int, int], preprocess: str) -> tuple[int, int]:
    """286 for 256 and the same 1.117 ratio elsewhere, as in pix2pix."""
    if preprocess == "none":
        return size
    return tuple(int(round(s * 286 / 256)) for s in size)  # type: ignore[return-value]


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area interpolation when shrinking, bicubic when enlarging."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)


def target_shape(shape: tuple[int, int], data: DataConfig, size: tuple[int, int],
                 load_size: tuple[int, int], path: Path) -> tuple[int, int]:
    """The (height, width) an image of ``shape`` is resized to before the random crop of ``size``.

    ``resize_and_crop``: the load size; ``scale_width``: the load width with the aspect ratio kept (never
    shorter than the crop); ``none``: unchanged, and an image smaller than the crop is an :class:`ImageError`.
    """
    crop_h, crop_w = size
    if data.preprocess == "resize_and_crop":
        return load_size
    if data.preprocess == "scale_width":
        width = max(crop_w, load_size[1])
        return max(crop_h, int(round(shape[0] * width / shape[1]))), width
    if shape[0] < crop_h or shape[1] < crop_w:
        raise ImageError(f"image is {shape[0]}x{shape[1]}, smaller than the training size {crop_h}x{crop_w} "
                         "(use --preprocess resize_and_crop)", path=path)
    return shape


class DecodedItems:
    """Base of datasets whose items are decoded on first use and kept in RAM when the whole set fits.

    Subclasses call :meth:`_init_cache` and implement :meth:`_decode`.
    """

    cached: bool = False
    _cache: list[torch.Tensor | None]

    def _init_cache(self, count: int, bytes_per_item: int, data: DataConfig, allowed: bool | None = None) -> None:
        self._cache = [None] * count
        allowed = data.cache if allowed is None else allowed
        self.cached = allowed and bytes_per_item * count <= data.cache_limit_mb * 2**20

    def _decode(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def _remember(self, index: int, item: torch.Tensor) -> None:
        if self.cached:
            self._cache[index] = item

    def __getitem__(self, index: int) -> torch.Tensor:
        item = self._cache[index]
        if item is None:
            item = self._decode(index)
            self._remember(index, item)
        return item


@dataclass(frozen=True)
class PairFiles:
    """Where one training pair comes from: one aligned file, or two files."""

    a: Path
    b: Path | None = None  # None: aligned, A and B are halves of ``a``


def match_by_stem(folder: Path, name_a: str, name_b: str) -> tuple[dict[str, Path], dict[str, Path]]:
    """The images of ``folder/name_a`` and ``folder/name_b`` by file stem; a name without a partner in the other
    folder is a :class:`DatasetError` listing up to five of them."""
    a_files = {p.stem: p for p in list_images(folder / name_a)}
    b_files = {p.stem: p for p in list_images(folder / name_b)}
    only_a, only_b = sorted(set(a_files) - set(b_files)), sorted(set(b_files) - set(a_files))
    if only_a or only_b:
        sample = ", ".join(([f"{name_a}/{n}" for n in only_a] + [f"{name_b}/{n}" for n in only_b])[:5])
        raise DatasetError(
            f"{len(only_a) + len(only_b)} file(s) have no partner with the same name (e.g. {sample})", path=folder)
    return a_files, b_files


def pair_files(folder: str | Path, layout: str = "auto") -> tuple[str, list[PairFiles]]:
    """List the pairs of an aligned or paired folder; unpaired names are a :class:`DatasetError`."""
    folder = Path(folder)
    layout = detect_layout(folder) if layout == "auto" else layout
    if layout == "aligned":
        pairs = [PairFiles(p) for p in list_images(folder)]
    elif layout == "paired":
        a_files, b_files = match_by_stem(folder, "A", "B")
        pairs = [PairFiles(a_files[k], b_files[k]) for k in sorted(a_files)]
    else:
        raise DatasetError(f"layout {layout!r} has no pairs; pix2pix needs 'aligned' or 'paired'", path=folder)
    if len(pairs) < MIN_IMAGES:
        raise DatasetError("no image pairs found", path=folder)
    return layout, pairs


class PairedImages(DecodedItems):
    """Decoded, resized (A, B) pairs as uint8 tensors (6, H, W): A in channels 0-2, B in 3-5.

    Images are resized to the load size once (deterministic) and cached in RAM when they fit in the
    configured budget; the random crop and flip happen later, on the training device (:class:`PairedAugment`).

    Args:
        folder: split folder with an aligned or paired layout.
        data: data options (layout, direction, preprocess, load size, background, cache).
        size: training crop (height, width).
    """

    def __init__(self, folder: str | Path, data: DataConfig, size: tuple[int, int]) -> None:
        self.folder = Path(folder)
        self.data = data
        self.size = size
        self.layout, self.pairs = pair_files(self.folder, data.layout)
        self.load_size = data.load_size or default_load_size(size, data.preprocess)
        self._init_cache(len(self.pairs), 6 * self.load_size[0] * self.load_size[1], data)

    def __len__(self) -> int:
        return len(self.pairs)

    def describe(self) -> dict:
        return {"folder": str(self.folder), "layout": self.layout, "pairs": len(self.pairs),
                "direction": self.data.direction, "load_size": list(self.load_size)}

    def _decode(self, index: int) -> torch.Tensor:
        pair = self.pairs[index]
        image = read_image(pair.a, self.data.background)
        if pair.b is None:
            width = image.shape[1]
            if width < 2:
                raise ImageError("too narrow to split into A|B halves", path=pair.a)
            half = width // 2
            a, b = image[:, :half], image[:, half: 2 * half]
        else:
            a, b = image, read_image(pair.b, self.data.background)
        if self.data.direction == "BtoA":
            a, b = b, a
        height, width = target_shape(a.shape[:2], self.data, self.size, self.load_size, pair.a)
        a, b = resize_rgb(a, height, width), resize_rgb(b, height, width)
        return torch.from_numpy(np.concatenate([a, b], axis=2)).permute(2, 0, 1).contiguous()

    def validate(self, limit: int | None = None) -> list[str]:
        """Decode every file (or the first ``limit``); return one message per broken file."""
        problems = []
        for index in range(len(self) if limit is None else min(limit, len(self))):
            try:
                self[index]
            except ImageError as exc:
                problems.append(str(exc))
        return problems


class EpochSampler:
    """Draws indices epoch by epoch in a seeded random order; its position is part of the checkpoint.

    With several training processes (:meth:`shard`), every rank walks the same order and a step takes
    ``batch_size x world_size`` consecutive indices, of which rank r keeps the r-th slice: together the ranks see
    exactly what one process with the whole batch would, and the state (epoch, position) is the same on every
    rank and independent of the number of ranks.
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True) -> None:
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.epoch, self.position = 0, 0
        self.rank, self.world_size = 0, 1
        self._order = self._make_order()

    def shard(self, rank: int, world_size: int) -> None:
        """Draw this rank's slice of every step's global batch from now on."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.rank, self.world_size = rank, world_size

    def _make_order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.length, generator=generator).tolist()

    def next_batch(self, batch_size: int) -> list[int]:
        """This rank's ``batch_size`` indices of the next step (the whole step's when not sharded)."""
        indices = []
        while len(indices) < batch_size * self.world_size:
            if self.position >= self.length:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._make_order()
            indices.append(self._order[self.position])
            self.position += 1
        return indices[self.rank * batch_size: (self.rank + 1) * batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._make_order()

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.position / max(1, self.length)


def steps_per_epoch(length: int, batch_size: int) -> int:
    return max(1, math.ceil(length / batch_size))


def random_crops(
    items: Sequence[torch.Tensor], size: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """Crop each (C, H, W) item at a random offset drawn from ``generator`` and stack to (B, C, h, w)."""
    crop_h, crop_w = size
    out = []
    for item in items:
        h, w = item.shape[-2:]
        if h < crop_h or w < crop_w:
            raise DatasetError(f"item of size {h}x{w} is smaller than the crop {crop_h}x{crop_w}")
        top = int(torch.randint(0, h - crop_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - crop_w + 1, (1,), generator=generator))
        out.append(item[..., top: top + crop_h, left: left + crop_w])
    return torch.stack(out)
