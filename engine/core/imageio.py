"""Reading and writing images, with one documented conversion rule to RGB.

Conversion rule (:func:`read_image`):

* JPEGs are decoded with their EXIF orientation applied, so a phone photo stands the right way up; other
  formats are decoded unchanged so their alpha channel survives.
* 16-bit samples are scaled to 8 bits (``value >> 8``); float images are clipped to [0, 1] and scaled to 255.
* Grey becomes RGB by copying the channel; palette images arrive expanded from the decoder; CMYK JPEGs
  arrive as RGB from the decoder.
* An alpha channel (grey+alpha or RGBA) is composited onto ``background`` (white unless configured):
  ``rgb * a + background * (1 - a)``.

The result is always ``uint8`` of shape (H, W, 3) in RGB order.
Files above :data:`MAX_PIXELS` are refused before decoding (decompression bombs).
"""

from __future__ import annotations

import errno
import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from engine.core.errors import ImageError, StorageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 178_956_970  # the same order as Pillow's bomb limit: about 179 megapixels
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\0", b"MM\0*")  # + RIFF....WEBP


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted by name), optionally in sub-folders too; hidden files are ignored."""
    folder = Path(folder)
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in pattern if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def declared_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG, JPEG, BMP, WebP or TIFF header states it, read without decoding; None when
    the header cannot be read (the decoder then judges the file).

    Example:
        >>> declared_size(b"\\x89PNG\\r\\n\\x1a\\n\\0\\0\\0\\rIHDR" + bytes([0, 0, 0, 16, 0x6c, 0x6c, 0x15, 0x15]))
        (16, 1819022613)
    """
    try:
        if raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR":
            return struct.unpack(">II", raw[16:24])
        if raw[:3] == b"\xff\xd8\xff":
            return _jpeg_size(raw)
        if raw[:2] == b"BM":
            if struct.unpack("<I", raw[14:18])[0] == 12:  # OS/2 header: 16-bit sizes
                return struct.unpack("<HH", raw[18:22])
            width, height = struct.unpack("<ii", raw[18:26])
            return abs(width), abs(height)
        if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            return _webp_size(raw)
        if raw[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_size(raw)
    except struct.error:  # the header is cut short
        return None
    return None


def png_structure_problem(raw: bytes) -> str | None:
    """What is wrong with a PNG's chunk layout (a chunk longer than the file, no IHDR first), or None.

    OpenCV's PNG reader takes tens of seconds on a chunk whose length field claims far more bytes than the
    file holds (a 1.5 KB file found by the fuzzer), so the lengths are walked before any decode.
    """
    at, first = 8, True
    while at + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[at:at + 8])
        if first and kind != b"IHDR":
            return "PNG does not start with its IHDR header chunk"
        first = False
        if at + 12 + length > len(raw):
            return f"PNG chunk {kind!r} claims {length} bytes but the file ends after {len(raw) - at - 12}"
        if kind == b"IEND":
            return None
        at += 12 + length
    return "PNG ends before its IEND chunk (truncated)"


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame marker (SOF0-SOF15 but DHT, JPG and DAC)."""
    at = 2
    while at + 9 <= len(raw):
        if raw[at] != 0xFF:
            return None
        marker = raw[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", raw[at + 5:at + 9])
            return width, height
        at += 2 + struct.unpack(">H", raw[at + 2:at + 4])[0]
    return None


def _webp_size(raw: bytes) -> tuple[int, int] | None:
    chunk = raw[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little")
    if chunk == b"VP8L":
        bits = struct.unpack("<I", raw[21:25])[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", raw[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff_size(raw: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first directory."""
    order = "<" if raw[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", raw[4:8])[0]
    count = struct.unpack(order + "H", raw[offset:offset + 2])[0]
    size: dict[int, int] = {}
    for index in range(min(count, 4096)):
        entry = raw[offset + 2 + 12 * index: offset + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (size[256], size[257]) if len(size) == 2 else None


def _probe_pixels(path: Path, data: np.ndarray) -> None:
    """Refuse images whose header claims more than MAX_PIXELS before a full decode."""
    declared = declared_size(data.tobytes()[:1 << 16])
    if declared is not None:
        width, height = declared
        if width * height > MAX_PIXELS:
            raise ImageError(f"image header declares {width}x{height} pixels, over the limit of {MAX_PIXELS} "
                             "(possible decompression bomb)", path=path)
        return
    try:
        # Decoding at 1/8 scale reads the header (and is cheap for JPEG); it tells the true size divided by 8.
        small = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error:
        small = None
    if small is not None and small.shape[0] * small.shape[1] * 64 > MAX_PIXELS:
        raise ImageError(
            f"image is about {small.shape[1] * 8}x{small.shape[0] * 8} pixels, over the limit of {MAX_PIXELS} "
            "(possible decompression bomb)", path=path,
        )


def to_rgb8(image: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Apply the conversion rule to an array as OpenCV decodes it (BGR/BGRA/grey, any depth)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 2:  # grey + alpha
        grey, alpha = image[:, :, :1], image[:, :, 1:2]
        rgb = np.repeat(grey, 3, axis=2)
        return _composite(rgb, alpha, background)
    if channels == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    rgb = np.ascontiguousarray(image[:, :, 2::-1])
    return _composite(rgb, image[:, :, 3:4], background)


def _composite(rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    a = alpha.astype(np.float32) / 255.0
    bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    return (out + 0.5).astype(np.uint8)


def read_image(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read any supported image as RGB ``uint8`` (H, W, 3); see the module docstring for the rule.

    Raises:
        ImageError: missing, empty, truncated, corrupt, unsupported or oversized file (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise ImageError("file not found", path=path)
    if path.is_dir():
        raise ImageError("is a folder, not an image file", path=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror})", path=path) from exc
    if not raw:
        raise ImageError("file is empty (0 bytes)", path=path)
    if not raw.startswith(_SIGNATURES) and not (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP"):
        raise ImageError("not a JPEG, PNG, BMP, TIFF or WebP image (unknown content)", path=path)
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and (problem := png_structure_problem(raw)):
        raise ImageError(f"image data is corrupt or truncated ({problem})", path=path)
    data = np.frombuffer(raw, dtype=np.uint8)
    _probe_pixels(path, data)
    if _looks_truncated(raw):
        raise ImageError("image data is truncated (file ends before the image does)", path=path)
    # JPEG has no alpha but often an EXIF orientation, which IMREAD_ANYCOLOR applies and IMREAD_UNCHANGED
    # ignores; other formats may carry alpha, so they are decoded unchanged.
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if raw[:3] == b"\xff\xd8\xff" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as exc:
        raise ImageError(f"cannot decode image ({exc.msg.strip() or 'decoder error'})", path=path) from exc
    if image is None or image.size == 0:
        raise ImageError("not a readable image (corrupt file or unsupported format)", path=path)
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image has {image.shape[0] * image.shape[1]} pixels, over the limit of {MAX_PIXELS}",
                         path=path)
    return to_rgb8(image, background)


def _looks_truncated(raw: bytes) -> bool:
    """Detect the common truncations the decoders would silently pad with grey."""
    if raw[:3] == b"\xff\xd8\xff":  # JPEG must end with EOI (allow trailing padding)
        return b"\xff\xd9" not in raw[-1024:]
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in raw[-64:]
    return False


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB ``uint8`` (H, W, 3) or grey (H, W) image atomically; the format follows the suffix.

    Raises:
        StorageError: the folder is not writable or the disk is full; an existing file is left untouched.
    """
    path = Path(path)
    if not is_image_file(path):
        raise StorageError(f"unsupported image suffix {path.suffix!r}", path=path)
    array = np.asarray(image)
    if array.ndim == 3:
        array = np.ascontiguousarray(array[:, :, ::-1])
    ok, encoded = cv2.imencode(path.suffix.lower(), array)
    if not ok:
        raise StorageError("could not encode image", path=path)
    atomic_write_bytes(path, encoded.tobytes())
    return path


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0666 less the process umask."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it, and put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def write_failure(exc: BaseException, needed_bytes: int | None = None) -> str:
    """Why a write failed, for a :class:`StorageError`: the OS reason, and on a full disk the space needed."""
    reason = getattr(exc, "strerror", None) or str(exc)
    code = getattr(exc, "errno", None)
    if code not in (errno.ENOSPC, errno.EDQUOT) and "os error 28" not in str(exc):
        return reason
    reason = os.strerror(code or errno.ENOSPC)  # the writer's wrapping (safetensors' "I/O error: ...") dropped
    return reason + (f"; about {_megabytes(needed_bytes)} of free space is needed" if needed_bytes else "")


def _megabytes(count: int) -> str:
    return f"{count / 2**20:.1f} MB" if count >= 2**17 else f"{max(1, count // 1024)} KB"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StorageError(f"cannot create file ({exc.strerror})", path=path) from exc
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"cannot write file ({write_failure(exc, len(data))})", path=path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
