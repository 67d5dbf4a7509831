"""Palettes: the classes of a label map, their colours, and which class the eraser paints.

A palette is data, stored as JSON::

    {
      "name": "facades",
      "background": 0,
      "dont_care": 255,
      "classes": [{"id": 0, "name": "background", "color": [0, 0, 222]}, ...]
    }

Class ids run 0..n-1 in file order, ids and colours are unique, ``background`` names a class id (the class
the eraser paints) and ``dont_care`` (optional) is an extra id outside 0..n-1, e.g. 255, for pixels that no
loss should see. ``dont_care_color`` (optional) is the colour such pixels have in colour-coded maps, and
``source`` (optional) says where the colours came from.

Bundled palettes live in ``assets/palettes/<name>.json``; :meth:`Palette.load` takes such a name or a path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from engine.core.errors import ConfigError
from engine.core.imageio import atomic_write_bytes

MAX_CLASSES = 255  # index maps are uint8 and 255 is the conventional don't-care id

Color = tuple[int, int, int]


@dataclass(frozen=True)
class PaletteClass:
    """One class of a palette: its id (0..n-1), a display name and an RGB colour."""

    id: int
    name: str
    color: Color


@dataclass(frozen=True)
class Palette:
    """An ordered, validated set of classes; construct it directly or with :meth:`load`.

    Raises:
        ConfigError: duplicate ids or colours, ids not 0..n-1 in order, unknown background, bad colours,
            or a don't-care id that collides with a class.
    """

    name: str
    classes: tuple[PaletteClass, ...]
    background: int = 0
    dont_care: int | None = None
    dont_care_color: Color | None = None
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("palette needs a non-empty name", value=self.name)
        if not self.classes:
            raise ConfigError(f"palette {self.name!r} has no classes", value=self.classes)
        if len(self.classes) > MAX_CLASSES:
            raise ConfigError(f"palette {self.name!r} has {len(self.classes)} classes; at most {MAX_CLASSES} fit "
                              "a uint8 index map", value=len(self.classes))
        ids = [c.id for c in self.classes]
        for cls in self.classes:
            if not isinstance(cls.id, int) or isinstance(cls.id, bool):
                raise ConfigError(f"class id must be an integer, got {cls.id!r}", value=cls.id)
            _check_color(cls.color, f"colour of class {cls.id} ({cls.name!r})")
            if not isinstance(cls.name, str) or not cls.name.strip():
                raise ConfigError(f"class {cls.id} needs a non-empty name", value=cls.name)
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"duplicate class ids {duplicates}", value=duplicates)
        if ids != list(range(len(ids))):
            raise ConfigError(f"class ids must be contiguous 0..{len(ids) - 1} in order, got {ids}", value=ids)
        colors = [tuple(c.color) for c in self.classes]
        seen: dict[tuple[int, ...], int] = {}
        for cls, color in zip(self.classes, colors, strict=True):
            if color in seen:
                raise ConfigError(f"classes {seen[color]} and {cls.id} share the colour {list(color)}",
                                  value=list(color))
            seen[color] = cls.id
        if self.background not in ids:
            raise ConfigError(f"background id {self.background!r} is not a class id (0..{len(ids) - 1})",
                              value=self.background)
        if self.dont_care is not None:
            if not isinstance(self.dont_care, int) or not len(ids) <= self.dont_care <= 255:
                raise ConfigError(f"dont_care id must be an integer in {len(ids)}..255 (outside the class ids), "
                                  f"got {self.dont_care!r}", value=self.dont_care)
        if self.dont_care_color is not None:
            if self.dont_care is None:
                raise ConfigError("dont_care_color is set but dont_care is not", value=self.dont_care_color)
            _check_color(self.dont_care_color, "dont_care_color")
            if tuple(self.dont_care_color) in seen:
                raise ConfigError(f"dont_care_color {list(self.dont_care_color)} is the colour of class "
                                  f"{seen[tuple(self.dont_care_color)]}", value=list(self.dont_care_color))
        object.__setattr__(self, "classes", tuple(
            PaletteClass(c.id, c.name, tuple(int(v) for v in c.color)) for c in self.classes))  # type: ignore[misc]
        if self.dont_care_color is not None:
            object.__setattr__(self, "dont_care_color", tuple(int(v) for v in self.dont_care_color))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @cached_property
    def colors(self) -> np.ndarray:
        """Class colours as a read-only ``uint8`` array of shape (n_classes, 3), row i = class i."""
        array = np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)
        array.setflags(write=False)
        return array

    @property
    def entries(self) -> list[tuple[str, Color]]:
        """``[(name, (r, g, b)), ...]`` in id order, as :meth:`from_entries` takes them."""
        return [(c.name, c.color) for c in self.classes]

    @property
    def background_color(self) -> Color:
        """The colour of the class the eraser paints."""
        return self.classes[self.background].color

    def id_of_color(self, rgb: object) -> int | None:
        """The id of the class drawn in exactly ``rgb``, or None when no class has that colour."""
        key = tuple(int(v) for v in rgb)  # type: ignore[attr-defined]
        return next((c.id for c in self.classes if c.color == key), None)

    def index_of(self, name: str) -> int:
        """The id of the class called ``name``; ConfigError naming the valid names otherwise."""
        for cls in self.classes:
            if cls.name == name:
                return cls.id
        raise ConfigError(f"palette {self.name!r} has no class {name!r}; classes: {', '.join(self.names)}",
                          value=name)

    # -- serialisation --------------------------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Sequence[tuple[str, Sequence[int]]], background: int = 0,
                     name: str = "custom") -> Palette:
        """A palette of ``[(name, (r, g, b)), ...]`` with ids in list order (validated as any palette)."""
        classes = tuple(PaletteClass(i, str(label), _as_color(tuple(rgb), f"class {i}"))
                        for i, (label, rgb) in enumerate(entries))
        return cls(name=name, classes=classes, background=background)

    def to_dict(self) -> dict:
        data: dict = {"name": self.name}
        if self.source:
            data["source"] = self.source
        data["background"] = self.background
        if self.dont_care is not None:
            data["dont_care"] = self.dont_care
        if self.dont_care_color is not None:
            data["dont_care_color"] = list(self.dont_care_color)
        data["classes"] = [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]
        return data

    @classmethod
    def from_dict(cls, data: object, path: str | Path | None = None) -> Palette:
        """Build and validate a palette from parsed JSON; errors name ``path`` when given."""
        try:
            if not isinstance(data, dict):
                raise ConfigError(f"palette must be a JSON object, got {type(data).__name__}")
            missing = [key for key in ("name", "classes") if key not in data]
            if missing:
                raise ConfigError(f"palette is missing {', '.join(missing)}", value=missing)
            known = {"name", "classes", "background", "dont_care", "dont_care_color", "source"}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ConfigError(f"unknown palette keys {unknown}; known: {sorted(known)}", value=unknown)
            if not isinstance(data["classes"], list):
                raise ConfigError("'classes' must be a list of {id, name, color}", value=data["classes"])
            classes = []
            for i, entry in enumerate(data["classes"]):
                if not isinstance(entry, dict) or set(entry) != {"id", "name", "color"}:
                    raise ConfigError(f"class entry {i} must have exactly id, name and color", value=entry)
                classes.append(PaletteClass(entry["id"], entry["name"], _as_color(entry["color"], f"class {i}")))
            dont_care_color = data.get("dont_care_color")
            return cls(
                name=data["name"],
                classes=tuple(classes),
                background=data.get("background", 0),
                dont_care=data.get("dont_care"),
                dont_care_color=None if dont_care_color is None else _as_color(dont_care_color, "dont_care_color"),
                source=str(data.get("source", "")),
            )
        except ConfigError as exc:
            if path is None or exc.path is not None:
                raise
            raise ConfigError(exc.args[0], path=path, value=exc.value) from exc

    @classmethod
    def load(cls, name_or_path: str | Path) -> Palette:
        """Load a bundled palette by name (see :func:`list_palettes`) or a palette JSON file by path.

        Raises:
            ConfigError: unknown name (the message lists the bundled ones), unreadable or invalid file.
        """
        text, path = _read_palette_text(name_or_path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"palette is not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from exc
        return cls.from_dict(data, path=path)

    def save(self, path: str | Path) -> Path:
        """Write the palette as JSON atomically (an existing file is replaced only when the write succeeds)."""
        path = Path(path)
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8"))
        return path


def list_palettes() -> list[str]:
    """Names of the palettes bundled in ``assets/palettes``."""
    folder = resources.files("assets") / "palettes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def _read_palette_text(name_or_path: str | Path) -> tuple[str, Path | str]:
    candidate = Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or candidate.suffix == ".json" or len(candidate.parts) > 1
    if looks_like_path or candidate.is_file():
        try:
            return candidate.read_text(encoding="utf-8"), candidate
        except FileNotFoundError as exc:
            raise ConfigError("palette file not found", path=candidate) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read palette file ({exc})", path=candidate) from exc
    resource = resources.files("assets") / "palettes" / f"{name_or_path}.json"
    if not resource.is_file():
        raise ConfigError(f"unknown palette {str(name_or_path)!r}; bundled palettes: "
                          f"{', '.join(list_palettes()) or 'none'} (or give a path to a .json file)",
                          value=name_or_path)
    return resource.read_text(encoding="utf-8"), str(resource)


def _as_color(value: object, what: str) -> Color:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ConfigError(f"{what}: colour must be [r, g, b], got {value!r}", value=value)
    return tuple(value)  # type: ignore[return-value]


def _check_color(color: object, what: str) -> None:
    ok = (isinstance(color, (list, tuple)) and len(color) == 3
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255 for v in color))
    if not ok:
        raise ConfigError(f"{what} must be three integers 0..255, got {color!r}", value=color)
