"""Ganvas project files (``.ganvas``): the drawing, its output and everything needed to redo the output.

A project is a zip archive with a fixed set of members:

* ``project.json`` (required): ``{"format": "ganvas-project", "version": 1, "model": {...}, "canvas": {...},
  "style": {...}, "settings": {...}}``;
* ``canvas.png`` (required): the drawing, RGB;
* ``output.png``: the model's last output, RGB;
* ``latent.npz``: named latent arrays (StyleGAN2 ``w``/``z`` and the like), stored without pickles;
* ``style.png``: a style image, RGB.

:func:`save_project` builds the archive in memory and writes it atomically, so a failed save leaves the old
file as it was. :func:`load_project` treats the file as untrusted: it refuses unsafe or unexpected member
names, too many members, members or totals above :data:`MAX_MEMBER_BYTES` / :data:`MAX_TOTAL_BYTES` (checked
in the zip directory and again while decompressing, so a header that lies does not help), images above
:data:`~engine.core.imageio.MAX_PIXELS`, corrupt archives and newer format versions.

Example:
    >>> import numpy as np, tempfile, os
    >>> project = Project(canvas=np.zeros((4, 6, 3), np.uint8), model=ModelReference("untrained", "pix2pix"))
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.ganvas")
    >>> load_project(save_project(path, project)).canvas.shape
    (4, 6, 3)
"""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.core.errors import ProjectError
from engine.core.imageio import MAX_PIXELS, atomic_write_bytes, png_structure_problem, to_rgb8

PROJECT_SUFFIX = ".ganvas"
FORMAT_NAME = "ganvas-project"
FORMAT_VERSION = 1
MODEL_KINDS = ("checkpoint", "bundled", "untrained")

PROJECT_JSON, CANVAS_PNG, OUTPUT_PNG, LATENT_NPZ, STYLE_PNG = (
    "project.json", "canvas.png", "output.png", "latent.npz", "style.png")
MEMBERS = (PROJECT_JSON, CANVAS_PNG, OUTPUT_PNG, LATENT_NPZ, STYLE_PNG)

MAX_MEMBERS = 16  # the archive; latent.npz may hold up to MAX_LATENTS arrays
MAX_LATENTS = 64
MAX_JSON_BYTES = 1 << 20
MAX_MEMBER_BYTES = 256 << 20  # uncompressed, per member
MAX_TOTAL_BYTES = 768 << 20  # uncompressed, all members together
_CHUNK = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ModelReference:
    """Which model made the output.

    Args:
        kind: ``checkpoint`` (``name`` is a file path), ``bundled`` (``name`` is the stem of a checkpoint
            shipped with Ganvas) or ``untrained`` (``name`` is a family; ``config`` its model config).
        name: the path, bundled id or family name.
        config: model config of an untrained network (JSON values); empty otherwise.
    """

    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ProjectError(f"model kind {self.kind!r} is not one of {', '.join(MODEL_KINDS)}", value=self.kind)
        if not isinstance(self.name, str) or not self.name:
            raise ProjectError("model reference needs a non-empty name", value=self.name)
        if not isinstance(self.config, dict):
            raise ProjectError("model config must be a mapping", value=self.config)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "config": dict(self.config)}


@dataclass(frozen=True, eq=False)
class Project:
    """One saved drawing session. Arrays are RGB ``uint8`` (H, W, 3); compare fields, not projects.

    Args:
        canvas: the drawing.
        model: the model reference, or None when no model was loaded.
        canvas_mode: how the canvas draws (``label``, ``edges``, ``sketch``, ``photo``).
        palette: the label palette's name, if any.
        style: inference options (e.g. ``{"direction": "AtoB", "seed": 7}``), JSON values.
        settings: other GUI settings worth keeping with the drawing (brush size, tool), JSON values.
        output: the last output image, if any.
        latents: named float arrays (e.g. ``{"w": (1, 512)}``) for latent models; empty when unused.
        style_image: a style reference image, if any.
    """

    canvas: np.ndarray
    model: ModelReference | None = None
    canvas_mode: str = "label"
    palette: str | None = None
    style: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    output: np.ndarray | None = None
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    style_image: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("canvas", "output", "style_image"):
            image = getattr(self, name)
            if image is None and name != "canvas":
                continue
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                    or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                got = (image.shape, str(image.dtype)) if isinstance(image, np.ndarray) else type(image).__name__
                raise ProjectError(f"{name} must be a uint8 (H, W, 3) RGB array, got {got}", value=got)
        if not isinstance(self.canvas_mode, str) or not self.canvas_mode:
            raise ProjectError("canvas_mode must be a non-empty string", value=self.canvas_mode)
        for name in ("style", "settings"):
            try:
                json.dumps(getattr(self, name))
            except (TypeError, ValueError) as exc:
                raise ProjectError(f"{name} must hold JSON values only ({exc})", value=getattr(self, name)) from exc
        if len(self.latents) > MAX_LATENTS:
            raise ProjectError(f"at most {MAX_LATENTS} latent arrays, got {len(self.latents)}", value=len(self.latents))
        for key, array in self.latents.items():
            if not key.isidentifier() or not isinstance(array, np.ndarray) or array.dtype.hasobject:
                raise ProjectError(f"latent {key!r} must be a numeric array under an identifier name", value=key)


# --- saving ----------------------------------------------------------------------------------------------
def save_project(path: str | Path, project: Project) -> Path:
    """Write ``project`` to ``path`` atomically (temp file beside it, fsync, rename).

    Raises:
        StorageError: the file cannot be written; an existing file at ``path`` is left intact.
    """
    path = Path(path)
    members: list[tuple[str, bytes, int]] = [
        (PROJECT_JSON, json.dumps(_project_json(project), indent=2).encode(), zipfile.ZIP_DEFLATED),
        (CANVAS_PNG, _encode_png(project.canvas), zipfile.ZIP_STORED),
    ]
    if project.output is not None:
        members.append((OUTPUT_PNG, _encode_png(project.output), zipfile.ZIP_STORED))
    if project.latents:
        buffer = io.BytesIO()
        np.savez(buffer, **{key: np.asarray(value) for key, value in project.latents.items()})
        members.append((LATENT_NPZ, buffer.getvalue(), zipfile.ZIP_DEFLATED))
    if project.style_image is not None:
        members.append((STYLE_PNG, _encode_png(project.style_image), zipfile.ZIP_STORED))
    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compression in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _project_json(project: Project) -> dict[str, Any]:
    height, width = project.canvas.shape[:2]
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": project.model.to_json() if project.model is not None else None,
        "canvas": {"mode": project.canvas_mode, "palette": project.palette, "width": width, "height": height},
        "style": project.style,
        "settings": project.settings,
    }


def _encode_png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:  # pragma: no cover - cv2 encodes any valid uint8 RGB array
        raise ProjectError("could not encode image as PNG")
    return encoded.tobytes()


# --- loading ---------------------------------------------------------------------------------------------
def load_project(path: str | Path) -> Project:
    """Read a project file, refusing anything unsafe or malformed.

    Raises:
        ProjectError: the file is missing, not a zip, truncated, unsafe (member names, sizes, counts), lacks
            ``project.json`` or ``canvas.png``, or was written by a newer Ganvas. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ProjectError("project file not found" if not path.exists() else "is not a file", path=path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(0, size - (1 << 16) - 22))
            tail = handle.read()
        _check_entry_count(tail, path)
        with zipfile.ZipFile(path) as archive:
            data = _read_members(archive, path)
    except ProjectError:
        raise
    except zipfile.BadZipFile as exc:
        raise ProjectError(f"not a readable Ganvas project (corrupt or truncated zip: {exc})", path=path) from exc
    except (OSError, EOFError, zlib.error, RuntimeError, NotImplementedError, ValueError) as exc:
        raise ProjectError(f"cannot read project archive ({type(exc).__name__}: {exc})", path=path) from exc
    return _project_from_members(data, path)


def _check_entry_count(tail: bytes, path: Path) -> None:
    """Refuse archives listing too many entries before zipfile parses the whole directory."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ProjectError("not a readable Ganvas project (no zip directory found: corrupt or truncated)", path=path)
    entries = struct.unpack("<H", tail[at + 10:at + 12])[0]
    if entries > MAX_MEMBERS:
        raise ProjectError(f"archive has too many members ({entries}, at most {MAX_MEMBERS})", path=path,
                           value=entries)


def _read_members(archive: zipfile.ZipFile, path: Path, allowed: tuple[str, ...] | None = MEMBERS,
                  max_members: int = MAX_MEMBERS, what: str = "archive") -> dict[str, bytes]:
    """Check names and sizes in the directory, then read each member with a running size limit."""
    infos = archive.infolist()
    if len(infos) > max_members:
        raise ProjectError(f"{what} has too many members ({len(infos)}, at most {max_members})", path=path,
                           value=len(infos))
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_name(name, path, what)
        if allowed is not None and name not in allowed:
            raise ProjectError(f"{what} has an unexpected member {name!r} (allowed: {', '.join(allowed)})",
                               path=path, value=name)
        if name in seen:
            raise ProjectError(f"{what} lists member {name!r} twice", path=path, value=name)
        seen.add(name)
        limit = _member_limit(name)
        if info.file_size > limit:
            raise ProjectError(f"{what} member {name!r} is too large ({info.file_size} bytes uncompressed, "
                               f"limit {limit})", path=path, value=info.file_size)
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise ProjectError(f"{what} is too large uncompressed (over {MAX_TOTAL_BYTES} bytes)", path=path,
                               value=total)
    data: dict[str, bytes] = {}
    total = 0
    for info in infos:
        data[info.filename] = _read_limited(archive, info, path, what, MAX_TOTAL_BYTES - total)
        total += len(data[info.filename])
    return data


def _check_name(name: str, path: Path, what: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ProjectError(f"{what} member {name!r} has an absolute path", path=path, value=name)
    if ".." in parts:
        raise ProjectError(f"{what} member {name!r} points outside the project (path traversal)", path=path,
                           value=name)
    if "\\" in name or "\x00" in name:
        raise ProjectError(f"{what} member {name!r} has an unsafe name", path=path, value=name)


def _member_limit(name: str) -> int:
    return MAX_JSON_BYTES if name == PROJECT_JSON else MAX_MEMBER_BYTES


def _read_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, what: str, budget: int) -> bytes:
    """Decompress in chunks and stop as soon as the member outgrows its limit, whatever its header said."""
    limit = min(_member_limit(info.filename), budget)
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ProjectError(f"{what} member {info.filename!r} decompresses to more than {limit} bytes "
                                   "(possible zip bomb)", path=path, value=info.filename)
            chunks.append(chunk)
    return b"".join(chunks)


def _project_from_members(data: dict[str, bytes], path: Path) -> Project:
    if PROJECT_JSON not in data:
        raise ProjectError(f"not a Ganvas project: {PROJECT_JSON} is missing", path=path)
    meta = _parse_json(data[PROJECT_JSON], path)
    if CANVAS_PNG not in data:
        raise ProjectError(f"project has no {CANVAS_PNG}", path=path)
    canvas = meta.get("canvas") or {}
    model = meta.get("model")
    try:
        reference = None if model is None else ModelReference(str(model["kind"]), str(model["name"]),
                                                                dict(model.get("config") or {}))
        return Project(
            canvas=_decode_png(data[CANVAS_PNG], CANVAS_PNG, path),
            model=reference,
            canvas_mode=str(canvas.get("mode", "label")),
            palette=None if canvas.get("palette") is None else str(canvas["palette"]),
            style=dict(meta.get("style") or {}),
            settings=dict(meta.get("settings") or {}),
            output=_decode_png(data[OUTPUT_PNG], OUTPUT_PNG, path) if OUTPUT_PNG in data else None,
            latents=_decode_latents(data[LATENT_NPZ], path) if LATENT_NPZ in data else {},
            style_image=_decode_png(data[STYLE_PNG], STYLE_PNG, path) if STYLE_PNG in data else None,
        )
    except ProjectError as exc:
        if exc.path is None:
            raise ProjectError(str(exc), path=path, value=exc.value) from exc
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProjectError(f"{PROJECT_JSON} is malformed ({type(exc).__name__}: {exc})", path=path) from exc


def _parse_json(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{PROJECT_JSON} is not valid JSON ({exc})", path=path) from exc
    except RecursionError as exc:
        raise ProjectError(f"{PROJECT_JSON} is nested too deeply to be a Ganvas project", path=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ProjectError(f"{PROJECT_JSON} does not describe a Ganvas project (format must be {FORMAT_NAME!r})",
                           path=path)
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{PROJECT_JSON} has an invalid format version {version!r}", path=path, value=version)
    if version > FORMAT_VERSION:
        raise ProjectError(f"project format version {version} is newer than this Ganvas reads (up to "
                           f"{FORMAT_VERSION}); update Ganvas to open it", path=path, value=version)
    return meta


def _decode_png(raw: bytes, name: str, path: Path) -> np.ndarray:
    """Decode a PNG member, refusing non-PNG data and images whose header claims more than MAX_PIXELS."""
    if raw[:8] != _PNG_SIGNATURE or len(raw) < 24 or raw[12:16] != b"IHDR":
        raise ProjectError(f"{name} is not a PNG image", path=path, value=name)
    width, height = struct.unpack(">II", raw[16:24])
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise ProjectError(f"{name} is {width}x{height} pixels, outside the limit of {MAX_PIXELS} pixels",
                           path=path, value=(width, height))
    problem = png_structure_problem(raw)
    if problem:
        raise ProjectError(f"{name} is corrupt or truncated ({problem})", path=path, value=name)
    try:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ProjectError(f"{name} cannot be decoded ({exc.msg.strip()})", path=path, value=name) from exc
    if image is None or image.shape[:2] != (height, width):
        raise ProjectError(f"{name} is corrupt or truncated", path=path, value=name)
    return to_rgb8(image)


def _decode_latents(raw: bytes, path: Path) -> dict[str, np.ndarray]:
    """Read ``latent.npz`` (itself a zip) with the same limits, never unpickling anything."""
    return read_npz_bytes(raw, path, LATENT_NPZ)


def read_npz_bytes(raw: bytes, path: Path, what: str, max_arrays: int = MAX_LATENTS) -> dict[str, np.ndarray]:
    """The arrays of an untrusted ``.npz`` (a zip of ``.npy`` files): member names, counts, sizes and each
    header's shape are checked before anything is allocated; pickles are refused.

    Raises:
        ProjectError: naming ``path`` and ``what`` (the member or file the arrays came from).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = _read_members(archive, path, None, max_arrays, what)
    except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError, ValueError) as exc:
        raise ProjectError(f"{what} is corrupt ({exc})", path=path) from exc
    arrays: dict[str, np.ndarray] = {}
    for name, blob in members.items():
        key = name[:-4] if name.endswith(".npy") else ""
        if not key.isidentifier():
            raise ProjectError(f"{what} has an unexpected member {name!r}", path=path, value=name)
        try:
            arrays[key] = _read_npy(blob, key, path, what)
        except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
            raise ProjectError(f"{what} array {key!r} is unreadable ({exc})", path=path, value=key) from exc
    return arrays


def _read_npy(blob: bytes, key: str, path: Path, what: str) -> np.ndarray:
    """One ``.npy`` member, after checking that the shape its header claims fits the bytes that follow, so a
    738-byte member cannot ask for a 37 GiB array."""
    stream = io.BytesIO(blob)
    version = np.lib.format.read_magic(stream)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in read_header:
        raise ValueError(f"unsupported .npy version {version}")
    shape, _, dtype = read_header[version](stream)
    if dtype.hasobject:
        raise ValueError("object arrays are refused")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if needed != len(blob) - stream.tell():
        raise ProjectError(f"{what} array {key!r} claims shape {shape} ({needed} bytes) but holds "
                           f"{len(blob) - stream.tell()} bytes", path=path, value=key)
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)
