"""Check a dataset folder before training: its layout, counts, a preview and every problem found.

:func:`check_dataset` never raises for a bad dataset; it reports. It decodes each file with
:func:`engine.core.imageio.read_image` (up to ``decode_limit`` files, with a note when it stops early), so
empty, truncated and corrupt files are listed with the reason, as are unpaired names, mixed image sizes
and sets too small to learn from. ``fits`` names the registered families that train on the layout.
For paired layouts it also tells which side is a drawing (label map, edges or sketch) and which the photo
(:func:`classify_drawing`), so the app can train the direction that maps the drawable side to the photo.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.errors import ConfigError, DatasetError, GanvasError, ImageError, StorageError
from engine.core.imageio import atomic_write_bytes, list_images, read_image

# The layouts check_dataset tells apart; families declare which they train on (``Family.layouts``). Aligned pairs
# whose one half is a colour label map are also "aligned+labels".
CHECKED_LAYOUTS = ("aligned", "aligned+labels", "paired", "unaligned", "labels+images", "images")
LABEL_DIRS, IMAGE_DIRS = ("labels", "label"), ("images", "image", "img")
MIN_RECOMMENDED = 10
SMALL_SET = 100  # fewer training images than this: a note that the model will mostly memorise them
DRAWABLE_KINDS = ("label", "edges", "sketch")
PALETTE_TOLERANCE = 30  # RGB distance within which a (JPEG-blurred) pixel counts as a palette colour
LABEL_SHARE = 0.6  # share of pixels near one palette's colours for an image to be read as its label map
SIDES_SAMPLED = 4
PREVIEW_COUNT = 6
MAX_SIZE_PROBLEMS = 20
SIZE_CACHE_DIR = "image-sizes"  # one JSON file per dataset folder under the cache folder


@dataclass(frozen=True)
class DatasetReport:
    """What :func:`check_dataset` found.

    Args:
        folder: the folder checked (a ``train/`` split inside it is used when present).
        layout: ``aligned``, ``paired``, ``unaligned``, ``labels+images``, ``images`` or ``none``.
        counts: image files per part (``images``, ``A``/``B``, ``trainA``/``trainB``, ``labels``, ``val``...).
        preview: the first few image files, for thumbnails.
        problems: (path, message) per problem; the folder's path for set-wide ones.
        fits: registered families that train on this layout.
        notes: remarks that are not problems (e.g. only the first N files were decoded).
        blocking: the problems that make training fail or learn the wrong thing (unreadable files, unpaired
            names, files that are not A|B pairs); the others (mixed sizes, small sets) are warnings.
    """

    folder: str
    layout: str
    counts: dict[str, int] = field(default_factory=dict)
    preview: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    fits: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    blocking: tuple[tuple[str, str], ...] = ()
    sides: dict[str, str] = field(default_factory=dict)
    palette: str = ""

    @property
    def ok(self) -> bool:
        return self.layout != "none" and not self.problems

    @property
    def drawable_side(self) -> str:
        """``A`` or ``B`` when exactly one side of a paired set is a drawing and the other a photo, else ``""``."""
        a, b = self.sides.get("A", ""), self.sides.get("B", "")
        if a in DRAWABLE_KINDS and b == "photo":
            return "A"
        if b in DRAWABLE_KINDS and a == "photo":
            return "B"
        return ""

    @property
    def direction(self) -> str:
        """The direction that maps the drawable side to the photo (``AtoB``/``BtoA``), ``""`` when unknown."""
        return {"A": "AtoB", "B": "BtoA"}.get(self.drawable_side, "")

    def input_kind(self, direction: str = "") -> str:
        """What the input side of a model trained in ``direction`` (default: :attr:`direction`) is, so what the
        app's canvas draws for it: ``label``, ``edges``, ``sketch`` or ``photo``; ``""`` when unknown."""
        if self.layout == "labels+images":
            return "label"
        direction = direction or self.direction
        return self.sides.get("A" if direction == "AtoB" else "B", "") if direction else ""


def _near_palette_share(pixels: np.ndarray, colors: np.ndarray) -> float:
    """The share of ``(N, 3)`` pixels within :data:`PALETTE_TOLERANCE` of one of ``colors``."""
    distance = ((pixels[:, None, :] - colors[None].astype(np.int32)) ** 2).sum(-1).min(1)
    return float((distance <= PALETTE_TOLERANCE ** 2).mean())


def classify_drawing(rgb: np.ndarray, palette: str = "") -> tuple[str, str]:
    """What an image is as a canvas drawing: ``(kind, palette)`` with kind ``label``, ``edges``, ``sketch`` or
    ``photo``, and the palette a label map is drawn in (``""`` otherwise): a bundled one, or ``palette`` (a
    name or JSON path, e.g. the user's own), which is tried first.

    A label map has most pixels near one palette's colours (JPEG blur allowed); edges are grey, nearly
    black and white (without in-between greys) and mostly white; a sketch is grey and mostly light; anything else is a photo.

    Example:
        >>> white = np.full((16, 16, 3), 255, np.uint8)
        >>> white[8] = 0
        >>> classify_drawing(white)
        ('edges', '')
    """
    small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)].reshape(-1, 3).astype(np.int32)
    shares = {name: _near_palette_share(small, colors) for name, colors in _candidate_palettes(palette).items()}
    best = max(shares, key=shares.__getitem__, default="")
    if best and shares[best] >= LABEL_SHARE:
        return "label", best
    grey = (small.max(1) - small.min(1) < 16).mean() >= 0.95
    light = (small.mean(1) > 200).mean()
    binary = ((small.mean(1) <= 16) | (small.mean(1) >= 239)).mean()  # Canny maps are exactly 0 and 255
    if grey and binary >= 0.985 and light >= 0.6:
        return "edges", ""
    if grey and light >= 0.3:
        return "sketch", ""
    return "photo", ""


def _candidate_palettes(palette: str) -> dict[str, np.ndarray]:
    """The colours of ``palette`` (when given and readable) and of every bundled palette, in that order."""
    from engine.data.palette import Palette, list_palettes

    candidates: dict[str, np.ndarray] = {}
    for name in ([palette] if palette else []) + list_palettes():
        try:
            candidates.setdefault(name, Palette.load(name).colors)
        except GanvasError:
            continue  # an unreadable palette is reported where it is used
    return candidates


def _sides(layout: str, files: dict[str, list[Path]], palette: str = "") -> tuple[dict[str, str], str]:
    """The kind of each side (``A``, ``B``) of a paired or aligned set, by majority over a few samples."""
    samples: dict[str, list[tuple[str, str]]] = {"A": [], "B": []}
    if layout == "aligned":
        for path in files["images"][:SIDES_SAMPLED]:
            try:
                image = read_image(path)
            except ImageError:
                continue
            half = image.shape[1] // 2
            samples["A"].append(classify_drawing(image[:, :half], palette))
            samples["B"].append(classify_drawing(image[:, half:2 * half], palette))
    elif layout == "paired":
        for side in ("A", "B"):
            for path in files[side][:SIDES_SAMPLED]:
                try:
                    samples[side].append(classify_drawing(read_image(path), palette))
                except ImageError:
                    continue
    sides = {side: Counter(k for k, _ in found).most_common(1)[0][0] for side, found in samples.items() if found}
    palettes = Counter(p for found in samples.values() for _, p in found if p)
    return sides, (palettes.most_common(1)[0][0] if palettes else "")


def _find_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_dir()), None)


def _parts(folder: Path) -> tuple[str, dict[str, Path]]:
    """The layout and its image folders (name -> folder); ``images`` may be read recursively."""
    for layout, names in (("paired", ("A", "B")), ("unaligned", ("trainA", "trainB"))):
        if all((folder / n).is_dir() for n in names):
            return layout, {n: folder / n for n in names}
    labels, images = _find_dir(folder, LABEL_DIRS), _find_dir(folder, IMAGE_DIRS)
    if labels is not None and images is not None:
        return "labels+images", {"labels": labels, "images": images}
    return "images", {"images": folder}


def _families(layout: str, sides: dict[str, str]) -> tuple[str, ...]:
    """Registered families that train on ``layout`` (their ``layouts``; aligned pairs with a label-map half also
    count as ``aligned+labels``), the best fit first: the layout itself before the label variant, then the family
    that lists it earlier, then by name."""
    from engine.core.registry import get_family, list_families

    tags = (layout, "aligned+labels") if layout == "aligned" and "label" in sides.values() else (layout,)
    ranked = []
    for name in list_families():
        declared = get_family(name).layouts
        for rank, tag in enumerate(tags):
            if tag in declared:
                ranked.append((rank, declared.index(tag), name))
                break
    return tuple(name for *_, name in sorted(ranked))


def check_dataset(folder: str | Path, decode_limit: int = 2000,
                  progress: Callable[[int, int], None] | None = None, palette: str = "") -> DatasetReport:
    """Inspect ``folder`` and report its layout, counts, preview files and problems.

    Args:
        folder: dataset root (with or without ``train/``/``val/`` splits).
        decode_limit: decode at most this many files (all of them are still counted).
        progress: called with (files decoded, files to decode).
        palette: a palette (name or JSON path) to recognise label maps in besides the bundled ones.
    """
    root = Path(folder)
    if not root.is_dir():
        return DatasetReport(str(root), "none", problems=((str(root), "folder not found"),))
    split = root / "train" if (root / "train").is_dir() else root
    layout, parts = _parts(split)
    files = {name: list_images(path, recursive=(layout == "images")) for name, path in parts.items()}
    counts = {name: len(paths) for name, paths in files.items()}
    for extra in ("val", "test"):
        if split is not root and (root / extra).is_dir():
            counts[extra] = len(list_images(root / extra, recursive=True))
    all_files = [p for paths in files.values() for p in paths]
    if not all_files:
        return DatasetReport(str(root), "none", counts, problems=(
            (str(split), "no images found (JPEG/PNG/BMP/TIFF/WebP, or A/ B/, trainA/ trainB/ folders)"),))
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    if layout in ("paired", "labels+images"):
        first, second = parts
        stems = {name: {p.stem: p for p in files[name]} for name in parts}
        for one, other in ((first, second), (second, first)):
            for stem in sorted(set(stems[one]) - set(stems[other])):
                problems.append((str(stems[one][stem]), f"no file named {stem}.* in {other}/"))
    shapes = _decode(root, all_files[:decode_limit], problems, progress)
    blocking = list(problems)  # unpaired and unreadable files
    if len(all_files) > decode_limit:
        notes.append(f"decoded the first {decode_limit} of {len(all_files)} files; the rest were only counted")
    if layout == "images" and shapes:
        common = Counter(shapes.values()).most_common(1)[0][0]
        if common[1] == 2 * common[0] and (split / files["images"][0].name).exists():
            layout = "aligned"
    before = len(problems)
    _size_problems(layout, shapes, problems)
    if layout == "aligned":
        blocking.extend(problems[before:])
    smallest = min(counts[name] for name in parts)
    if smallest < MIN_RECOMMENDED:
        problems.append((str(split), f"only {smallest} image(s); at least {MIN_RECOMMENDED} are recommended"))
    elif smallest < SMALL_SET:
        notes.append(f"a very small set ({smallest} images): the model will mostly memorise it; "
                     f"a few hundred images generalise better")
    if not any(extra in counts for extra in ("val", "test")):
        notes.append("no validation split (a val/ or test/ folder beside train/): ganvas eval has nothing "
                     "held out to measure on")
    sides, found_palette = _sides(layout, files, palette)
    preview = tuple(str(p) for p in all_files[:PREVIEW_COUNT])
    return DatasetReport(str(root), layout, counts, preview, tuple(problems), _families(layout, sides), tuple(notes),
                         tuple(blocking), sides, found_palette)


def palette_mismatch(model_palette: str, data_palette: str) -> str:
    """Why a model that draws label maps in ``model_palette`` (a name or JSON path) must not train on label maps
    found to be in ``data_palette`` (a name or JSON path): their colours name other classes. ``""`` when
    either is unknown or they hold the same colours."""
    if not model_palette or not data_palette:
        return ""
    from engine.data.palette import Palette

    try:
        model, data = Palette.load(model_palette), Palette.load(data_palette)
    except ConfigError:
        return ""  # a palette that cannot be read is reported where it is used
    if np.array_equal(model.colors, data.colors):
        return ""
    return (f"its label maps are drawn in the {data.name} palette, but the model draws in {model.name}: the same "
            f"colours would mean other classes (label maps in {model.name}, or a model of {data.name})")


def preflight(folder: str | Path, family: str, layout: str = "auto", palette: str = "") -> list[str]:
    """Check a dataset before training ``family`` on it (what the training window shows, as one line).
    ``palette``: the label palette the model draws in (its config's), which label maps must match.

    Returns:
        warnings (``path: message``) that do not stop training: mixed sizes that get resized, small sets.

    Raises:
        DatasetError: no images, a layout ``family`` does not train on (when ``layout`` is ``auto``), label maps
            in another palette than ``palette``, or files that would fail or mislead training (unreadable,
            unpaired, not A|B pairs); the first is named.
    """
    report = check_dataset(folder, palette=palette)
    if report.layout == "none":
        where, message = report.problems[0]
        raise DatasetError(message, path=where)
    if layout == "auto" and family not in report.fits:
        fits = ", ".join(report.fits) or "no family"
        raise DatasetError(f"looks like a dataset of {report.layout} images, which {family} does not train on "
                           f"(it fits {fits}; see docs/datasets.md)", path=report.folder, value=report.layout)
    mismatch = palette_mismatch(palette, report.palette)
    if mismatch:
        raise DatasetError(mismatch, path=report.folder, value=report.palette)
    if report.blocking:
        where, message = report.blocking[0]
        more = f" (and {len(report.blocking) - 1} more problem(s); `Check dataset` in the app lists them all)" \
            if len(report.blocking) > 1 else ""
        raise DatasetError(f"{message}{more}", path=where)
    return [f"{where}: {message}" for where, message in report.problems]


def _decode(root: Path, paths: list[Path], problems: list[tuple[str, str]],
            progress: Callable[[int, int], None] | None) -> dict[Path, tuple[int, int]]:
    """Each file's (height, width), or its problem; files unchanged since an earlier check of ``root`` (same
    size and modification time) are taken from its cache instead of being decoded again."""
    cache = _SizeCache.load(root)
    shapes: dict[Path, tuple[int, int]] = {}
    for index, path in enumerate(paths):
        known = cache.get(path)
        if isinstance(known, list):
            shapes[path] = (known[0], known[1])
        elif isinstance(known, str):
            problems.append((str(path), known))
        else:
            try:
                shapes[path] = read_image(path).shape[:2]
                cache.put(path, list(shapes[path]))
            except ImageError as exc:
                problems.append((str(path), str(exc).removeprefix(f"{path}: ")))
                cache.put(path, problems[-1][1])
            except GanvasError as exc:  # pragma: no cover - read_image raises ImageError only
                problems.append((str(path), str(exc)))
        if progress is not None:
            progress(index + 1, len(paths))
    cache.save()
    return shapes


def cache_dir() -> Path:
    """Where Ganvas keeps caches: ``$GANVAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganvas`` or ``~/.cache/ganvas``."""
    if os.environ.get("GANVAS_CACHE_DIR"):
        return Path(os.environ["GANVAS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ganvas"


class _SizeCache:
    """Decoded image sizes (or the decode problem) of one dataset folder's files, by path, size and modification
    time, in a JSON file of its own: a check reads and writes only its dataset's entries, and files that left
    the dataset are dropped at the next save."""

    def __init__(self, path: Path, entries: dict[str, object]) -> None:
        self.path, self.entries, self.changed = path, entries, False
        self.used: set[str] = set()

    @classmethod
    def load(cls, root: Path) -> _SizeCache:
        name = hashlib.sha1(str(root.resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:20]
        path = cache_dir() / SIZE_CACHE_DIR / f"{name}.json"
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    @staticmethod
    def _key(path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def get(self, path: Path) -> object:
        key = self._key(path)
        if key is None:
            return None
        self.used.add(key)
        value = self.entries.get(key)
        if isinstance(value, list) and not (len(value) == 2 and all(isinstance(v, int) for v in value)):
            return None  # a damaged entry: decode again
        return value

    def put(self, path: Path, value: object) -> None:
        key = self._key(path)
        if key:
            self.used.add(key)
            self.entries[key] = value
            self.changed = True

    def save(self) -> None:
        if self.changed or len(self.entries) > len(self.used):
            kept = {key: self.entries[key] for key in self.used if key in self.entries}
            try:
                atomic_write_bytes(self.path, json.dumps(kept).encode("utf-8"))
            except StorageError:
                pass  # only a cache: the next check decodes again


def _size_problems(layout: str, shapes: dict[Path, tuple[int, int]], problems: list[tuple[str, str]]) -> None:
    """Files whose size differs from the most common one (aligned files must also be twice as wide as tall)."""
    if not shapes:
        return
    groups: dict[Path, list[Path]] = {}
    for path in shapes:
        groups.setdefault(path.parent, []).append(path)
    listed = 0
    for paths in groups.values():
        common, _ = Counter(shapes[p] for p in paths).most_common(1)[0]
        for path in paths:
            h, w = shapes[path]
            if layout == "aligned" and w != 2 * h:
                message = f"{w}x{h} is not an A|B pair (width must be twice the height)"
            elif shapes[path] != common:
                message = f"size {w}x{h} differs from most files ({common[1]}x{common[0]}); it will be resized"
            else:
                continue
            listed += 1
            if listed <= MAX_SIZE_PROBLEMS:
                problems.append((str(path), message))
    if listed > MAX_SIZE_PROBLEMS:
        problems.append((str(next(iter(groups))), f"... and {listed - MAX_SIZE_PROBLEMS} more files of other sizes"))
