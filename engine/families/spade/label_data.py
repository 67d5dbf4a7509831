"""Label-map datasets for semantic image synthesis (SPADE): (label map, photo) pairs, decoded once.

Layouts (see ``docs/spade.md``):

* ``aligned``: each image holds a photo and its colour-coded label map side by side (pix2pix ``facades``:
  photo left, JPEG label map right). Which half is the label map is detected from the first file: the half
  whose colours snap to the palette.
* ``labels``: folders ``labels/`` and ``images/`` whose files match by name (stem); labels are index PNGs
  (one channel of class ids) or colour maps. An optional ``instances/`` folder holds instance-id maps (any
  integer PNG, 8 or 16 bit) with the same names.
* the official SPADE layouts, read where they lie in the dataset folder: ``spade`` (COCO-Stuff as the SPADE
  repo prepares it: ``train_label/`` + ``train_img/`` [+ ``train_inst/``], ``val_*`` for validation) and
  ``ade20k`` (``ADEChallengeData2016/``: ``annotations/training/`` + ``images/training/``, ``validation``).

Every label map is decoded, snapped to the palette and checked when the dataset is opened, so a map with
foreign colours or ids stops the run before the first step with a :class:`~engine.core.errors.LabelError` naming
the file, the share of bad pixels and an example location (never a device-side index error later).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from engine.core.config import DataConfig
from engine.core.errors import DatasetError, ImageError, LabelError
from engine.core.imageio import list_images, read_image
from engine.data.augment import to_minus_one_one
from engine.data.datasets import (
    DecodedItems,
    default_load_size,
    detect_layout,
    match_by_stem,
    random_crops,
    resize_rgb,
    target_shape,
)
from engine.data.labels import DEFAULT_TOLERANCE, read_label_map, snap_to_palette
from engine.data.palette import Palette

LABEL_LAYOUTS = ("aligned", "labels")


@dataclass(frozen=True)
class LabelFiles:
    """Where one example comes from: an aligned file (``label`` None) or a label file and an image file."""

    image: Path
    label: Path | None = None
    instance: Path | None = None


@dataclass(frozen=True)
class LabelFolders:
    """One split of an official SPADE dataset layout, read where it lies.

    Attributes:
        root: the dataset folder.
        layout: ``spade`` (COCO-Stuff and the SPADE repo's ``<split>_label/`` + ``<split>_img/`` [+
            ``<split>_inst/``]) or ``ade20k`` (``annotations/<training|validation>/`` + ``images/...``).
        labels, images, instances: the folders (``instances`` None when absent).
    """

    root: Path
    layout: str
    labels: Path
    images: Path
    instances: Path | None = None


OFFICIAL_LAYOUTS = ("spade", "ade20k")


def official_label_folders(root: str | Path, split: str = "train") -> LabelFolders | None:
    """The folders of ``split`` (``train``; ``val`` or ``test`` -> the validation split) when ``root`` has an
    official SPADE layout, None when it has none.

    Raises:
        DatasetError: the layout is there but a folder of this split is missing (all missing ones are listed).
    """
    root = Path(root)
    phase = "train" if split == "train" else "val"
    if any((root / f"{p}_{kind}").is_dir() for p in ("train", "val") for kind in ("label", "img", "inst")):
        missing = [f"{phase}_{kind}/" for kind in ("label", "img") if not (root / f"{phase}_{kind}").is_dir()]
        if missing:
            raise DatasetError(f"SPADE/COCO-Stuff layout ({phase}_label/ + {phase}_img/, optional {phase}_inst/): "
                               f"missing {', '.join(missing)}", path=root)
        instances = root / f"{phase}_inst"
        return LabelFolders(root, "spade", root / f"{phase}_label", root / f"{phase}_img",
                            instances if instances.is_dir() else None)
    base = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
    ade_marks = (base / "annotations").is_dir() or any((base / "images" / s).is_dir() for s in ("training", "validation"))
    if ade_marks and not (base / "labels").is_dir():  # labels/ + images/ is Ganvas's own layout
        ade = "training" if phase == "train" else "validation"
        missing = [f"{kind}/{ade}/" for kind in ("annotations", "images") if not (base / kind / ade).is_dir()]
        if missing:
            raise DatasetError(f"ADE20K layout (annotations/{ade}/ + images/{ade}/): missing {', '.join(missing)}",
                               path=base)
        return LabelFolders(base, "ade20k", base / "annotations" / ade, base / "images" / ade)
    return None


def _official_files(folders: LabelFolders, use_instance: bool) -> list[LabelFiles]:
    """Label maps, photos (and instance maps) of an official layout matched by file name."""
    root = folders.root
    labels, images = match_by_stem(root, str(folders.labels.relative_to(root)), str(folders.images.relative_to(root)))
    instances: dict[str, Path] = {}
    if use_instance:
        if folders.instances is None:
            name = folders.labels.name.replace("_label", "_inst")
            raise DatasetError(f"use_instance is on but there is no {name}/ folder"
                               + (" (ADE20K has no instance maps)" if folders.layout == "ade20k" else ""), path=root)
        instances = {p.stem: p for p in list_images(folders.instances)}
        missing = sorted(set(labels) - set(instances))
        if missing:
            raise DatasetError(f"{len(missing)} label map(s) have no instance map (e.g. "
                               f"{', '.join(f'{folders.instances.name}/{n}' for n in missing[:5])})", path=root)
    return [LabelFiles(images[k], labels[k], instances.get(k)) for k in sorted(labels)]


def label_files(folder: str | Path | LabelFolders, layout: str = "auto",
                use_instance: bool = False) -> tuple[str, list[LabelFiles]]:
    """List the examples of a split folder (or of an official layout's split); unmatched names are a
    :class:`DatasetError`."""
    if isinstance(folder, LabelFolders):
        return folder.layout, _official_files(folder, use_instance)
    folder = Path(folder)
    if layout in ("auto", *OFFICIAL_LAYOUTS):
        official = official_label_folders(folder, "train")
        if official is not None and layout in ("auto", official.layout):
            return official.layout, _official_files(official, use_instance)
        if layout in OFFICIAL_LAYOUTS:
            raise DatasetError(f"no {layout} layout here (expected "
                               + ("train_label/ + train_img/" if layout == "spade" else
                                  "annotations/training/ + images/training/") + ")", path=folder)
    if layout == "auto":
        layout = "labels" if (folder / "labels").is_dir() and (folder / "images").is_dir() else detect_layout(folder)
    if layout == "aligned":
        if use_instance:
            raise DatasetError("use_instance needs an instances/ folder (labels/ + images/ layout); aligned "
                               "images carry no instance maps", path=folder)
        files = [LabelFiles(p) for p in list_images(folder)]
    elif layout == "labels":
        labels, images = match_by_stem(folder, "labels", "images")
        instances: dict[str, Path] = {}
        if use_instance:
            if not (folder / "instances").is_dir():
                raise DatasetError("use_instance is on but there is no instances/ folder", path=folder)
            instances = {p.stem: p for p in list_images(folder / "instances")}
            missing = sorted(set(labels) - set(instances))
            if missing:
                raise DatasetError(f"{len(missing)} label map(s) have no instance map (e.g. "
                                   f"{', '.join('instances/' + n for n in missing[:5])})", path=folder)
        files = [LabelFiles(images[k], labels[k], instances.get(k)) for k in sorted(labels)]
    else:
        raise DatasetError(f"layout {layout!r} holds no label maps; SPADE reads 'aligned' (photo | label map), "
                           "'labels' (labels/ + images/ folders), 'spade' (train_label/ + train_img/, as COCO-Stuff) "
                           "or 'ade20k' (annotations/training/ + images/training/)", path=folder)
    if not files:
        raise DatasetError("no label maps found", path=folder)
    return layout, files


def detect_label_half(path: Path, palette: Palette, tolerance: float = DEFAULT_TOLERANCE) -> Literal["left", "right"]:
    """The half of an aligned image that is a label map of ``palette`` (fewer unknown pixels wins).

    Raises:
        LabelError: neither half snaps cleanly; the message is the better half's report.
    """
    image = read_image(path)
    half = image.shape[1] // 2
    reports = {}
    for side, part in (("right", image[:, half: 2 * half]), ("left", image[:, :half])):
        _, report = snap_to_palette(np.ascontiguousarray(part), palette, tolerance, strict=False, path=path)
        if report.ok:
            return side  # type: ignore[return-value]
        reports[side] = report
    best = min(reports.values(), key=lambda r: r.n_unknown)
    raise LabelError(f"neither half is a label map of palette {palette.name!r}; the closer one: {best.message()}",
                     path=path, value=best)


def instance_edges(instances: np.ndarray) -> np.ndarray:
    """Boundary map of an instance-id map: 1 where a 4-neighbour has another id, else 0 (uint8, (H, W))."""
    ids = np.asarray(instances)
    edge = np.zeros(ids.shape, dtype=bool)
    horizontal = ids[:, 1:] != ids[:, :-1]
    vertical = ids[1:, :] != ids[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge.astype(np.uint8)


def _read_instances(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if image is None:
        raise ImageError("not a readable instance map", path=path)
    if image.ndim == 3:  # colour-coded instances: pack the channels into one id
        image = image[:, :, :3].astype(np.int64)
        image = (image[:, :, 0] << 16) | (image[:, :, 1] << 8) | image[:, :, 2]
    return image


class LabelImages(DecodedItems):
    """Decoded (photo, label ids[, instance edges]) examples as uint8 tensors (4 or 5, H, W).

    Channels 0-2 are the photo, channel 3 the class ids, channel 4 (with ``use_instance``) the instance
    boundary map. Everything is resized to the load size once (photos with area/bicubic, label and instance
    maps with nearest only) and kept in RAM within ``data.cache_limit_mb``; every label map is checked when the
    dataset opens.

    Args:
        folder: split folder with an ``aligned`` or ``labels`` layout.
        data: data options (layout, preprocess, load size, background, cache).
        size: training crop (height, width).
        palette: the classes label maps must use.
        use_instance: add the instance boundary channel.
        limit: read only the first ``limit`` examples (evaluation).

    Raises:
        DatasetError: bad layout or unmatched names.
        LabelError: a label map with foreign colours or ids (checked for every file before training).
    """

    def __init__(self, folder: str | Path | LabelFolders, data: DataConfig, size: tuple[int, int], palette: Palette,
                 use_instance: bool = False, limit: int | None = None) -> None:
        self.folder = folder.root if isinstance(folder, LabelFolders) else Path(folder)
        self.data, self.size, self.palette = data, size, palette
        self.use_instance = use_instance
        self.layout, self.files = label_files(folder, data.layout, use_instance)
        if limit is not None:
            self.files = self.files[:limit]
        self.label_half = detect_label_half(self.files[0].image, palette) if self.layout == "aligned" else None
        self.load_size = data.load_size or default_load_size(size, data.preprocess)
        channels = 5 if use_instance else 4
        self._init_cache(len(self.files), channels * self.load_size[0] * self.load_size[1], data)
        self._check_all()

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> dict:
        out = {"folder": str(self.folder), "layout": self.layout, "pairs": len(self.files),
               "palette": self.palette.name, "load_size": list(self.load_size)}
        if self.label_half:
            out["label_half"] = self.label_half
        return out

    def _check_all(self) -> None:
        """Decode every example once (caching it) so bad label maps surface before training starts."""
        problems: list[LabelError] = []
        for index in range(len(self.files)):
            try:
                item = self._decode(index)
            except LabelError as exc:
                problems.append(exc)
                continue
            self._remember(index, item)
        if problems:
            first = problems[0]
            more = ""
            if len(problems) > 1:
                names = ", ".join(p.path.name for p in problems[1:4] if p.path is not None)
                more = f" (and {len(problems) - 1} more label map(s) with the same problem, e.g. {names})"
            raise LabelError(f"{first.args[0]}{more}", value=first.value)

    def _decode(self, index: int) -> torch.Tensor:
        files = self.files[index]
        if files.label is None:  # aligned: one half photo, the other the colour label map
            image = read_image(files.image, self.data.background)
            half = image.shape[1] // 2
            left, right = image[:, :half], image[:, half: 2 * half]
            photo, colors = (left, right) if self.label_half == "right" else (right, left)
            labels = snap_to_palette(np.ascontiguousarray(colors), self.palette, path=files.image)
        else:
            photo = read_image(files.image, self.data.background)
            labels = read_label_map(files.label, self.palette)
            if labels.shape != photo.shape[:2]:
                raise DatasetError(f"label map is {labels.shape[0]}x{labels.shape[1]} but its image "
                                   f"{files.image.name} is {photo.shape[0]}x{photo.shape[1]}", path=files.label)
        height, width = target_shape(photo.shape[:2], self.data, self.size, self.load_size, files.image)
        planes = [resize_rgb(photo, height, width), _resize_nearest(labels, height, width)[:, :, None]]
        if files.instance is not None:
            instances = _read_instances(files.instance)
            if instances.shape != labels.shape:
                raise DatasetError(f"instance map is {instances.shape[0]}x{instances.shape[1]}, its label map "
                                   f"{labels.shape[0]}x{labels.shape[1]}", path=files.instance)
            instances = _resize_nearest(instances.astype(np.int32), height, width)
            planes.append(instance_edges(instances)[:, :, None])
        return torch.from_numpy(np.concatenate(planes, axis=2)).permute(2, 0, 1).contiguous()


def _resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_NEAREST)


class LabelAugment:
    """The same random crop and flip on photo, label and edge channels (integer shifts only, no resampling).

    Returns ``(photo, labels, edges)``: photo float (B, 3, h, w) in [-1, 1], labels long (B, h, w), edges float
    (B, 1, h, w) or None. All randomness comes from ``generator`` (checkpointed by the training loop).
    """

    def __init__(self, size: tuple[int, int], flip: bool, device: torch.device, generator: torch.Generator) -> None:
        self.size, self.flip, self.device, self.generator = size, flip, device, generator

    def __call__(self, items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        batch = random_crops(items, self.size, self.generator)
        if self.flip:
            flips = torch.rand(len(items), generator=self.generator) < 0.5
            batch = torch.where(flips.view(-1, 1, 1, 1), batch.flip(-1), batch)
        return split_item(batch.to(self.device, non_blocking=True))


def split_item(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """uint8 (B, 4|5, H, W) -> photo in [-1, 1], label ids (long), edges (float) or None."""
    photo = to_minus_one_one(batch[:, :3])
    labels = batch[:, 3].long()
    edges = batch[:, 4:5].float() if batch.shape[1] > 4 else None
    return photo, labels, edges
