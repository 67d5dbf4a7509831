"""Unaligned (unpaired) image domains for CycleGAN: two folders of images with no correspondence.

Where the two domains come from (``DataConfig.path``, see ``docs/cyclegan.md``):

* a dataset root holding ``trainA/`` and ``trainB/`` (the CycleGAN layout, e.g. ``horse2zebra``), optionally
  with ``testA/``/``testB/`` (or ``valA/``/``valB/``) for evaluation;
* a root holding ``A/`` and ``B/`` (file names are ignored: no pairing is assumed);
* any two folders given as ``DIR_A,DIR_B`` (e.g. ``emoji/twitter,emoji/google``). An existing folder whose name
  contains a comma is read as a folder, not split.

Images are decoded with :func:`engine.core.imageio.read_image` (grey -> RGB, alpha composited onto the configured
background), resized once to the load size and cached in RAM when both domains fit in ``cache_limit_mb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.core.config import DataConfig
from engine.core.errors import DatasetError
from engine.core.imageio import list_images, read_image
from engine.data.datasets import DecodedItems, default_load_size, resize_rgb, target_shape

UNALIGNED_LAYOUTS = ("auto", "unaligned", "paired")
EVAL_FALLBACK_LIMIT = 100


@dataclass(frozen=True)
class UnalignedSplit:
    """The two folders of one split; ``fallback`` is True when evaluation had to use the training folders."""

    folder_a: Path
    folder_b: Path
    fallback: bool = False

    def describe(self) -> str:
        return f"{self.folder_a},{self.folder_b}" + (" (no test split: training images)" if self.fallback else "")


def _pair_of_dirs(root: Path, names: tuple[str, str]) -> tuple[Path, Path] | None:
    a, b = root / names[0], root / names[1]
    return (a, b) if a.is_dir() and b.is_dir() else None


def unaligned_split(path: str | Path, split: str = "train") -> UnalignedSplit:
    """Resolve ``path`` (a root or ``DIR_A,DIR_B``) to the domain folders of ``split``.

    ``train`` reads ``trainA``/``trainB`` (or ``A``/``B``, or the two given folders). Any other split reads
    ``{split}A``/``{split}B``, ``val`` also ``testA``/``testB``; without them it falls back to the training
    folders and marks the result ``fallback`` (callers then evaluate a limited number of images).

    Raises:
        DatasetError: missing folders or no recognisable layout (the message lists the accepted ones).
    """
    text = str(path)
    root = Path(text)
    if not root.is_dir() and "," in text:
        parts = [Path(p.strip()) for p in text.split(",")]
        if len(parts) != 2 or not all(str(p) not in ("", ".") for p in parts):
            raise DatasetError(f"expected two folders DIR_A,DIR_B, got {text!r}", path=text)
        for part in parts:
            if not part.is_dir():
                raise DatasetError("domain folder not found", path=part)
        return UnalignedSplit(parts[0], parts[1], fallback=split != "train")
    if not root.is_dir():
        raise DatasetError("dataset folder not found", path=root)
    train = _pair_of_dirs(root, ("trainA", "trainB")) or _pair_of_dirs(root, ("A", "B"))
    if split != "train":
        candidates = [(f"{split}A", f"{split}B")] + ([("testA", "testB")] if split == "val" else [])
        for names in candidates:
            found = _pair_of_dirs(root, names)
            if found is not None:
                return UnalignedSplit(*found)
    if train is None:
        raise DatasetError("no unaligned layout found: expected trainA/ and trainB/ (or A/ and B/) folders, "
                           "or two folders given as DIR_A,DIR_B", path=root)
    return UnalignedSplit(*train, fallback=split != "train")


class ImageDomain(DecodedItems):
    """One domain: decoded, resized images as uint8 tensors (3, H, W), cached on first use when allowed.

    Args:
        folder: folder of images (not recursive).
        data: data options (preprocess, load size, background).
        size: training crop (height, width).
        cache: keep decoded images in RAM.
    """

    def __init__(self, folder: Path, data: DataConfig, size: tuple[int, int], cache: bool = True) -> None:
        self.folder, self.data, self.size = Path(folder), data, size
        self.files = list_images(self.folder)
        if not self.files:
            raise DatasetError("no images found (expected JPEG/PNG/BMP/TIFF/WebP files)", path=self.folder)
        self.load_size = data.load_size or default_load_size(size, data.preprocess)
        self._init_cache(len(self.files), 3 * self.load_size[0] * self.load_size[1], data, allowed=cache)

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, index: int) -> torch.Tensor:
        path = self.files[index]
        image = read_image(path, self.data.background)
        height, width = target_shape(image.shape[:2], self.data, self.size, self.load_size, path)
        image = resize_rgb(image, height, width)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


class UnalignedImages:
    """Domains A and B of a training split; ``DataConfig.direction == "BtoA"`` swaps them.

    Images are resized to the load size once; random crops and flips happen later on the training device,
    independently for A and B (:class:`engine.data.augment.PairedAugment` on each list).
    """

    def __init__(self, data: DataConfig, size: tuple[int, int], split: str = "train") -> None:
        if data.layout not in UNALIGNED_LAYOUTS:
            raise DatasetError(f"layout {data.layout!r} is not unaligned; CycleGAN reads "
                               f"{', '.join(UNALIGNED_LAYOUTS)}", path=data.path)
        self.split = unaligned_split(data.path, split)
        folder_a, folder_b = self.split.folder_a, self.split.folder_b
        if data.direction == "BtoA":
            folder_a, folder_b = folder_b, folder_a
        load = data.load_size or default_load_size(size, data.preprocess)
        count = len(list_images(folder_a)) + len(list_images(folder_b))
        cache = data.cache and count * 3 * load[0] * load[1] <= data.cache_limit_mb * 2**20
        self.a = ImageDomain(folder_a, data, size, cache)
        self.b = ImageDomain(folder_b, data, size, cache)
        self.data = data

    def __len__(self) -> int:
        """One epoch: ``max(|A|, |B|)`` draws of A (cycling through A), each with a random B."""
        return max(len(self.a), len(self.b))

    def describe(self) -> dict:
        return {"folder_A": str(self.a.folder), "folder_B": str(self.b.folder), "layout": "unaligned",
                "images_A": len(self.a), "images_B": len(self.b), "direction": self.data.direction,
                "load_size": list(self.a.load_size)}
