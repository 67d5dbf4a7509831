"""Label maps: colour-coded maps <-> class-index maps, palette extraction and one-hot encoding.

An index map is ``uint8`` (H, W) holding class ids 0..n-1 (or the palette's ``dont_care`` id). A colour map
is RGB ``uint8`` (H, W, 3) that is snapped to the nearest palette colour.

Unknown-colour rule (:func:`snap_to_palette`). Real colour maps are rarely clean: resizing blends the colours
of neighbouring regions along their border and JPEG's chroma subsampling turns thin regions (a 4-pixel red
pillar on a blue facade) into purple. A pixel is *unknown* only when all three hold:

1. it is further than ``tolerance`` (Euclidean distance in RGB, 0..441) from every palette colour,
2. it is further than ``tolerance`` from every blend of two palette colours that occur in the same map
   (the segment between them in RGB), so edge mixes are not foreign,
3. it lies in a blob at least 3x3 pixels large (it survives a 3x3 morphological opening), so isolated
   specks and lines one or two pixels wide count as edge noise.

:data:`DEFAULT_TOLERANCE` = 100: on the label halves of the 500 facades images with the bundled palette
the smallest tolerance that passes every one is about 75 (at 70 ten images fail), so 100 leaves room for
rougher JPEGs, and pure green, about 175 from the facades colours and their blends, is still caught.
Every pixel, unknown or not, gets the id of its nearest palette colour.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import cv2
import numpy as np
import torch

from engine.core.errors import DatasetError, ImageError, LabelError
from engine.core.imageio import list_images, read_image, write_image
from engine.data.palette import Color, Palette, PaletteClass

DEFAULT_TOLERANCE = 100.0
EDGE_WIDTH = 2  # blobs of unknown colour up to this many pixels thin are edge noise, not foreign colours

Half = Literal["left", "right"]


@dataclass(frozen=True)
class SnapReport:
    """What snapping found: pixels per class and the pixels whose colour is not in the palette.

    ``share`` is the fraction (0..1) of unknown pixels; ``example_xy``/``example_color`` locate one of them.
    """

    n_pixels: int
    n_unknown: int
    counts: tuple[int, ...]
    tolerance: float
    example_xy: tuple[int, int] | None = None
    example_color: Color | None = None
    unknown_colors: tuple[tuple[Color, int], ...] = ()
    path: Path | None = None
    palette_name: str = ""

    @property
    def ok(self) -> bool:
        return self.n_unknown == 0

    @property
    def share(self) -> float:
        return self.n_unknown / self.n_pixels if self.n_pixels else 0.0

    def message(self) -> str:
        """One line for a user: how many pixels, where, which colours."""
        if self.ok:
            return f"all {self.n_pixels} pixels match palette {self.palette_name!r}"
        x, y = self.example_xy  # type: ignore[misc]
        common = ", ".join(f"{list(c)} ({n} px)" for c, n in self.unknown_colors)
        return (f"{self.n_unknown} pixels ({100 * self.share:.2f}%) have colours that are not in palette "
                f"{self.palette_name!r} (further than {self.tolerance:g} from every class colour), e.g. at "
                f"x={x}, y={y} colour {list(self.example_color)}; most common: {common}")  # type: ignore[arg-type]


@dataclass(frozen=True)
class ConvertReport:
    """Result of :func:`convert_color_maps`: files written, pixels per class, files with unknown colours."""

    written: tuple[Path, ...]
    counts: tuple[int, ...]
    unknown: tuple[SnapReport, ...] = field(default=())

    @property
    def n_written(self) -> int:
        return len(self.written)


# -- snapping -------------------------------------------------------------------------------------------


def _candidates(palette: Palette) -> tuple[np.ndarray, np.ndarray]:
    """Colours to snap to and the id each one maps to (the classes, then the don't-care colour if any)."""
    colors = palette.colors.astype(np.int32)
    ids = np.arange(palette.n_classes, dtype=np.uint8)
    if palette.dont_care is not None and palette.dont_care_color is not None:
        colors = np.vstack([colors, np.asarray(palette.dont_care_color, dtype=np.int32)[None]])
        ids = np.append(ids, np.uint8(palette.dont_care))
    return colors, ids


def _nearest(colors: np.ndarray, targets: np.ndarray, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest target and squared distance, for each row of ``colors`` (int, (N, 3))."""
    x = colors.astype(np.float64)
    c = targets.astype(np.float64)
    c2 = np.einsum("kc,kc->k", c, c)
    best = np.empty(len(x), dtype=np.intp)
    best_d2 = np.empty(len(x), dtype=np.float64)
    step = max(1, chunk // max(1, len(c)))
    for start in range(0, len(x), step):
        block = x[start:start + step]
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, exact in float64 for 8-bit colours
        d2 = np.einsum("nc,nc->n", block, block)[:, None] - 2.0 * block @ c.T + c2[None]
        best[start:start + step] = d2.argmin(axis=1)
        best_d2[start:start + step] = d2.min(axis=1)
    return best, best_d2


def _blend_distance(colors: np.ndarray, targets: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Distance of each colour to the nearest segment between two of ``targets`` (float, (N,))."""
    if len(targets) < 2:
        return np.full(len(colors), np.inf)
    pairs = np.array(list(itertools.combinations(range(len(targets)), 2)))
    a = targets[pairs[:, 0]].astype(np.float64)
    ab = targets[pairs[:, 1]].astype(np.float64) - a
    ab2 = np.einsum("pc,pc->p", ab, ab)
    a_ab = np.einsum("pc,pc->p", a, ab)
    a2 = np.einsum("pc,pc->p", a, a)
    x = colors.astype(np.float64)
    out = np.empty(len(x))
    step = max(1, chunk // len(pairs))
    for start in range(0, len(x), step):
        block = x[start:start + step]
        # with r = x - a: t = clip(r.ab / |ab|^2, 0, 1) and |r - t ab|^2 = |r|^2 - 2t r.ab + t^2 |ab|^2
        r_ab = block @ ab.T - a_ab[None]
        r2 = np.einsum("nc,nc->n", block, block)[:, None] - 2.0 * block @ a.T + a2[None]
        t = np.clip(r_ab / ab2[None], 0.0, 1.0)
        d2 = r2 - 2.0 * t * r_ab + t * t * ab2[None]
        out[start:start + step] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def _snap(rgb: np.ndarray, palette: Palette, tolerance: float,
          path: str | Path | None) -> tuple[np.ndarray, SnapReport]:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise LabelError(f"colour map must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}", path=path,
                         value=rgb.shape)
    if tolerance < 0:
        raise LabelError(f"tolerance must be >= 0, got {tolerance}", path=path, value=tolerance)
    height, width = rgb.shape[:2]
    flat = rgb.reshape(-1, 3)
    packed = (flat[:, 0].astype(np.uint32) << 16) | (flat[:, 1].astype(np.uint32) << 8) | flat[:, 2]
    unique, inverse = np.unique(packed, return_inverse=True)
    inverse = inverse.reshape(-1)
    ucolors = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.int32)

    targets, ids = _candidates(palette)
    nearest, d2 = _nearest(ucolors, targets)
    index = ids[nearest][inverse].reshape(height, width)
    counts = tuple(int(c) for c in np.bincount(index.reshape(-1), minlength=256)[:palette.n_classes])

    far = d2 > tolerance * tolerance
    n_unknown, example_xy, example_color, unknown_colors = 0, None, None, ()
    kernel = np.ones((EDGE_WIDTH + 1, EDGE_WIDTH + 1), np.uint8)
    mask = cv2.morphologyEx(far[inverse].reshape(height, width).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    if mask.any():
        # Only pixels that survive the opening of the far mask can survive the opening of (far & not a
        # blend), so blend distances are needed for their colours alone.
        present = np.unique(nearest[~far])
        candidates = np.unique(inverse[mask.reshape(-1).astype(bool)])
        foreign = np.zeros(len(unique), dtype=bool)
        foreign[candidates] = _blend_distance(ucolors[candidates], targets[present]) > tolerance
        mask &= foreign[inverse].reshape(height, width)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    n_unknown = int(mask.sum())
    if n_unknown:
        first = int(np.argmax(mask.reshape(-1)))
        y, x = divmod(first, width)
        example_xy, example_color = (x, y), tuple(int(v) for v in rgb[y, x])
        values, freq = np.unique(packed[mask.reshape(-1).astype(bool)], return_counts=True)
        top = np.argsort(freq)[::-1][:3]
        unknown_colors = tuple(((int(values[i] >> 16) & 255, int(values[i] >> 8) & 255, int(values[i]) & 255),
                                int(freq[i])) for i in top)
    report = SnapReport(
        n_pixels=height * width, n_unknown=n_unknown, counts=counts, tolerance=float(tolerance),
        example_xy=example_xy, example_color=example_color,  # type: ignore[arg-type]
        unknown_colors=unknown_colors, path=Path(path) if path is not None else None, palette_name=palette.name,
    )
    return index, report


@overload
def snap_to_palette(rgb: np.ndarray, palette: Palette, tolerance: float = ..., *, strict: Literal[True] = ...,
                    path: str | Path | None = ...) -> np.ndarray: ...


@overload
def snap_to_palette(rgb: np.ndarray, palette: Palette, tolerance: float = ..., *, strict: Literal[False],
                    path: str | Path | None = ...) -> tuple[np.ndarray, SnapReport]: ...


def snap_to_palette(rgb: np.ndarray, palette: Palette, tolerance: float = DEFAULT_TOLERANCE, *,
                    strict: bool = True, path: str | Path | None = None):
    """Map each pixel of a colour map to the id of its nearest palette colour.

    Args:
        rgb: colour map, ``uint8`` (H, W, 3) in RGB order.
        palette: the classes; a ``dont_care_color`` snaps to the ``dont_care`` id.
        tolerance: RGB distance beyond which a colour is unknown (see the module docstring for the rule).
        strict: raise on unknown colours; with ``strict=False`` return ``(index, report)`` instead.
        path: the file the map came from, named in errors and reports.

    Returns:
        ``uint8`` (H, W) index map, or ``(index map, SnapReport)`` when ``strict`` is False.

    Raises:
        LabelError: (strict only) unknown colours; the message gives their share in percent, an example
            (x, y) and its colour; ``error.value`` is the :class:`SnapReport`.
    """
    index, report = _snap(rgb, palette, tolerance, path)
    if not strict:
        return index, report
    if not report.ok:
        raise LabelError(report.message(), path=path, value=report)
    return index


def index_to_color(index_map: np.ndarray, palette: Palette) -> np.ndarray:
    """Colour an index map (H, W) with the palette: ``uint8`` (H, W, 3) RGB.

    Don't-care pixels get ``dont_care_color`` (black when the palette has none).

    Raises:
        LabelError: ids that are neither classes nor the don't-care id.
    """
    index_map = np.asarray(index_map)
    _check_ids(index_map, palette, None)
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:palette.n_classes] = palette.colors
    if palette.dont_care is not None and palette.dont_care_color is not None:
        lut[palette.dont_care] = palette.dont_care_color
    return lut[index_map.astype(np.uint8)]


# -- reading --------------------------------------------------------------------------------------------


def _check_ids(index_map: np.ndarray, palette: Palette, path: str | Path | None) -> None:
    if index_map.ndim != 2 or not np.issubdtype(index_map.dtype, np.integer):
        raise LabelError(f"index map must be an integer (H, W) array, got {index_map.dtype} {index_map.shape}",
                         path=path, value=index_map.shape)
    bad = (index_map < 0) | (index_map >= palette.n_classes)
    if palette.dont_care is not None:
        bad &= index_map != palette.dont_care
    if bad.any():
        ids = np.unique(index_map[bad])
        shown = ", ".join(str(int(i)) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        allowed = f"0..{palette.n_classes - 1}" + (f" or {palette.dont_care}" if palette.dont_care is not None
                                                   else "")
        raise LabelError(f"{int(bad.sum())} pixels ({100 * bad.mean():.2f}%) have ids {shown}, not in palette "
                         f"{palette.name!r} ({allowed})", path=path, value=[int(i) for i in ids])


def _take_half(image: np.ndarray, aligned_half: Half | None, path: str | Path | None) -> np.ndarray:
    if aligned_half is None:
        return image
    if aligned_half not in ("left", "right"):
        raise LabelError(f"aligned_half must be 'left', 'right' or None, got {aligned_half!r}", path=path,
                         value=aligned_half)
    width = image.shape[1]
    if width % 2:
        raise LabelError(f"aligned A|B image has odd width {width}; cannot split it in halves", path=path,
                         value=width)
    return image[:, : width // 2] if aligned_half == "left" else image[:, width // 2:]


def _read_unchanged(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ImageError("file not found" if not path.exists() else "not a file", path=path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        raise ImageError("file is empty (0 bytes)", path=path)
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError("not a readable image (corrupt file or unsupported format)", path=path)
    return image


def read_label_map(path: str | Path, palette: Palette, kind: Literal["auto", "index", "color"] = "auto", *,
                   tolerance: float = DEFAULT_TOLERANCE, aligned_half: Half | None = None) -> np.ndarray:
    """Read a label map file as a ``uint8`` (H, W) index map.

    Args:
        path: image file.
        palette: the classes the map must use.
        kind: ``"index"`` (single-channel ids), ``"color"`` (colours snapped to the palette) or ``"auto"``
            (a single-channel PNG is an index map, anything else a colour map).
        tolerance: snapping tolerance for colour maps (see :func:`snap_to_palette`).
        aligned_half: take only the ``"left"`` or ``"right"`` half of an aligned A|B image.

    Raises:
        ImageError: the file cannot be read.
        LabelError: ids outside the palette (message names them and their share) or unknown colours.
    """
    path = Path(path)
    if kind not in ("auto", "index", "color"):
        raise LabelError(f"kind must be 'auto', 'index' or 'color', got {kind!r}", path=path, value=kind)
    if kind == "auto":
        is_png = path.suffix.lower() == ".png"
        kind = "index" if is_png and _read_unchanged(path).ndim == 2 else "color"
    if kind == "color":
        rgb = _take_half(read_image(path), aligned_half, path)
        return snap_to_palette(np.ascontiguousarray(rgb), palette, tolerance, path=path)
    image = _read_unchanged(path)
    if image.ndim == 3:
        channels = image[:, :, :3]
        if not (channels == channels[:, :, :1]).all():
            raise LabelError(f"expected a single-channel index map, got {image.shape[2]} channels with "
                             "different values (read it as kind='color')", path=path, value=image.shape)
        image = channels[:, :, 0]
    index = _take_half(image, aligned_half, path)
    _check_ids(index, palette, path)
    return np.ascontiguousarray(index.astype(np.uint8))


# -- palettes from data and batch conversion ----------------------------------------------------------


def _gather(folder_or_files: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(folder_or_files, (str, Path)):
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise DatasetError("folder not found" if not folder.exists() else "not a folder", path=folder)
        files = list_images(folder)
        if not files:
            raise DatasetError("no image files in folder", path=folder)
        return files
    files = [Path(p) for p in folder_or_files]
    if not files:
        raise DatasetError("no label map files given", value=files)
    return files


def extract_palette(folder_or_files: str | Path | Sequence[str | Path], n_colors: int | None = None,
                    max_colors: int = 32, *, aligned_half: Half | None = None, name: str = "extracted",
                    min_share: float = 0.001, merge_distance: float = 24.0) -> Palette:
    """Find the class colours of a set of colour-coded label maps.

    Mode-finding on a colour histogram: only pixels inside flat regions count (edge blends and JPEG ringing
    are dropped), colours are binned on a 32-level grid, the most populated bins become centres unless
    within ``merge_distance`` of a stronger one, and each centre is refined to the mean colour of the bins
    it attracts. Classes are ordered by frequency (class 0, the background, is the most common colour) and
    named ``class_0``, ``class_1``, ...

    Args:
        folder_or_files: a folder of label maps or a list of files.
        n_colors: keep exactly this many colours (the most frequent); None to keep every colour found.
        max_colors: refuse (DatasetError) when more colours than this are found: not a label map.
        aligned_half: read only the ``"left"`` or ``"right"`` half of aligned A|B images.
        name: name of the new palette.
        min_share: ignore colours covering less than this fraction of the flat pixels.
        merge_distance: RGB distance under which two modes are one colour.

    Raises:
        DatasetError: no files, fewer than ``n_colors`` or more than ``max_colors`` colours found.
    """
    files = _gather(folder_or_files)
    levels, shift = 32, 3
    counts = np.zeros(levels ** 3, dtype=np.int64)
    sums = np.zeros((levels ** 3, 3), dtype=np.float64)
    kernel = np.ones((3, 3), np.uint8)
    for file in files:
        rgb = np.ascontiguousarray(_take_half(read_image(file), aligned_half, file))
        spread = (cv2.dilate(rgb, kernel).astype(np.int16) - cv2.erode(rgb, kernel)).max(axis=2)
        pixels = rgb[spread <= 24].astype(np.int64)
        bins = ((pixels[:, 0] >> shift) * levels + (pixels[:, 1] >> shift)) * levels + (pixels[:, 2] >> shift)
        counts += np.bincount(bins, minlength=levels ** 3)
        for c in range(3):
            sums[:, c] += np.bincount(bins, weights=pixels[:, c], minlength=levels ** 3)
    total = counts.sum()
    if total == 0:
        raise DatasetError("no flat colour regions found in the label maps", path=files[0].parent)
    used = np.flatnonzero(counts)
    means = sums[used] / counts[used, None]
    weights = counts[used]
    order = np.argsort(weights, kind="stable")[::-1]
    centres: list[np.ndarray] = []
    for i in order:
        if weights[i] < min_share * total:
            break
        if all(np.linalg.norm(means[i] - c) > merge_distance for c in centres):
            centres.append(means[i])
            if len(centres) > max_colors:
                raise DatasetError(f"more than {max_colors} distinct colours found; these look like photos, "
                                   "not colour-coded label maps (raise max_colors if they are)",
                                   path=files[0].parent, value=len(centres))
    if not centres:
        raise DatasetError("no colour covers enough pixels to be a class", path=files[0].parent)
    # refine: each centre becomes the weighted mean of the bins it attracts (within merge_distance)
    centre_array = np.array(centres)
    d = np.linalg.norm(means[:, None, :] - centre_array[None], axis=2)
    owner = d.argmin(axis=1)
    near = d.min(axis=1) <= merge_distance
    support = np.zeros(len(centres))
    for k in range(len(centres)):
        sel = near & (owner == k)
        support[k] = weights[sel].sum()
        centre_array[k] = (means[sel] * weights[sel, None]).sum(axis=0) / support[k]
    ranked = np.argsort(support, kind="stable")[::-1]
    if n_colors is not None:
        if len(ranked) < n_colors:
            raise DatasetError(f"found only {len(ranked)} colours, fewer than n_colors={n_colors}",
                               path=files[0].parent, value=len(ranked))
        ranked = ranked[:n_colors]
    classes = tuple(PaletteClass(i, f"class_{i}", tuple(int(v) for v in np.rint(centre_array[k])))
                    for i, k in enumerate(ranked))
    source = (f"extract_palette over {len(files)} files"
              + (f" ({aligned_half} halves)" if aligned_half else "") + f", {int(total)} flat pixels")
    return Palette(name=name, classes=classes, background=0, source=source)  # type: ignore[arg-type]


def convert_color_maps(src_folder: str | Path, dst_folder: str | Path, palette: Palette, *,
                       tolerance: float = DEFAULT_TOLERANCE, strict: bool = True,
                       aligned_half: Half | None = None,
                       progress: Callable[[int, int], None] | None = None) -> ConvertReport:
    """Convert every colour map in ``src_folder`` to an index PNG ``dst_folder/<stem>.png``; ``progress`` is
    called with (files done, files) after each.

    Each file is written atomically. With ``strict`` the first map with unknown colours raises (maps
    converted before it stay written, it and later ones are not); otherwise all maps are written, unknown
    pixels snapped to the nearest colour, and the report lists the files that had them.

    Raises:
        DatasetError: missing or empty source folder, destination equal to the source, two sources with
            the same stem.
        LabelError: (strict only) a map with unknown colours.
        StorageError: a file cannot be written.
    """
    src, dst = Path(src_folder), Path(dst_folder)
    files = _gather(src)
    if dst.resolve() == src.resolve():
        raise DatasetError("destination folder is the source folder; choose another one", path=dst)
    stems: dict[str, Path] = {}
    for file in files:
        if file.stem in stems:
            raise DatasetError(f"{stems[file.stem].name} and {file.name} would both become {file.stem}.png",
                               path=src)
        stems[file.stem] = file
    written: list[Path] = []
    totals = np.zeros(palette.n_classes, dtype=np.int64)
    unknown: list[SnapReport] = []
    for file in files:
        rgb = np.ascontiguousarray(_take_half(read_image(file), aligned_half, file))
        index, report = snap_to_palette(rgb, palette, tolerance, strict=False, path=file)
        if not report.ok:
            if strict:
                raise LabelError(report.message(), path=file, value=report)
            unknown.append(report)
        written.append(write_image(dst / f"{file.stem}.png", index))
        totals += np.asarray(report.counts, dtype=np.int64)
        if progress is not None:
            progress(len(written), len(files))
    return ConvertReport(written=tuple(written), counts=tuple(int(c) for c in totals), unknown=tuple(unknown))


# -- tensors --------------------------------------------------------------------------------------------


def one_hot(index_map: torch.Tensor, n_classes: int, dont_care: int | None = None,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot encode a batch of index maps: (B, H, W) integer -> (B, n_classes, H, W) ``dtype``.

    Pixels equal to ``dont_care`` are all-zero across classes.

    Raises:
        LabelError: wrong shape or dtype, or ids outside 0..n_classes-1 (other than ``dont_care``).
    """
    if index_map.ndim != 3 or index_map.dtype.is_floating_point or index_map.dtype == torch.bool:
        raise LabelError(f"index map must be an integer tensor (B, H, W), got {index_map.dtype} "
                         f"{tuple(index_map.shape)}", value=tuple(index_map.shape))
    index_map = index_map.long()
    ignore = index_map == dont_care if dont_care is not None else torch.zeros_like(index_map, dtype=torch.bool)
    bad = ((index_map < 0) | (index_map >= n_classes)) & ~ignore
    if bool(bad.any()):
        ids = sorted(int(i) for i in torch.unique(index_map[bad])[:10])
        raise LabelError(f"ids {ids} outside 0..{n_classes - 1}", value=ids)
    safe = index_map.masked_fill(ignore, 0)
    out = torch.zeros((index_map.shape[0], n_classes, *index_map.shape[1:]), dtype=dtype,
                      device=index_map.device)
    out.scatter_(1, safe.unsqueeze(1), 1.0)
    return out.masked_fill_(ignore.unsqueeze(1), 0.0)
