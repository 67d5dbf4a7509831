"""The canvas document and its pixel machinery: palettes, QImage <-> numpy, flood fill, stroke layers.

Nothing here owns a widget. Images are ``QImage.Format_RGB32``; :func:`qimage_view` exposes their
memory as an ``(H, W, 4)`` uint8 array in B, G, R, 0xFF byte order (little-endian hosts).
"""

from __future__ import annotations

import bisect
import math
from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QUndoCommand, QUndoStack

from engine.api import Palette

Rgb = tuple[int, int, int]

MAX_SIDE = 8192
WHITE: Rgb = (255, 255, 255)
BLACK: Rgb = (0, 0, 0)


class CanvasMode(str, Enum):
    """What the artist draws: a semantic label map, an edge map, a grey sketch or over a colour photo."""

    LABEL = "label"
    EDGES = "edges"
    SKETCH = "sketch"
    PHOTO = "photo"


class Tool(str, Enum):
    """The canvas tools; the value is the name used in the API and the UI."""

    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    LINE = "line"
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"
    EYEDROPPER = "eyedropper"


SHAPE_TOOLS = frozenset({Tool.LINE, Tool.RECTANGLE, Tool.ELLIPSE})


DEFAULT_PALETTE = Palette.from_entries([
    ("unlabeled", (0, 0, 0)), ("sky", (70, 130, 180)), ("tree", (107, 142, 35)),
    ("grass", (152, 251, 152)), ("building", (70, 70, 70)), ("road", (128, 64, 128)),
    ("water", (0, 80, 160)), ("mountain", (150, 100, 100)),
], name="default")


# --- QImage <-> numpy -------------------------------------------------------------------------------

def qimage_view(image: QImage) -> np.ndarray:
    """Writable ``(H, W, 4)`` BGRA view of an RGB32 image's memory (detaches shared data first).

    The view does not keep ``image`` alive: hold a reference to the image while using it.
    """
    h, w = image.height(), image.width()
    flat = np.frombuffer(image.bits(), dtype=np.uint8)
    return flat.reshape(h, image.bytesPerLine())[:, : w * 4].reshape(h, w, 4)


def _alpha_view(image: QImage) -> np.ndarray:
    h, w = image.height(), image.width()
    return np.frombuffer(image.constBits(), dtype=np.uint8).reshape(h, image.bytesPerLine())[:, :w]


def check_rgb_array(array: np.ndarray) -> np.ndarray:
    """Return ``array`` if it is an ``(H, W, 3)`` uint8 image within size limits, else raise ValueError."""
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        shape = getattr(array, "shape", None)
        dtype = getattr(array, "dtype", type(array).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {shape} dtype {dtype}")
    check_size(array.shape[1], array.shape[0])
    return array


def check_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"canvas size {width}x{height} outside 1..{MAX_SIDE} per side")


def blank_image(width: int, height: int, rgb: Rgb) -> QImage:
    check_size(width, height)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(*rgb))
    return image


def qimage_from_rgb(array: np.ndarray) -> QImage:
    """Copy an ``(H, W, 3)`` uint8 RGB array into a new RGB32 QImage."""
    check_rgb_array(array)
    h, w = array.shape[:2]
    image = QImage(w, h, QImage.Format.Format_RGB32)
    view = qimage_view(image)
    view[..., :3] = array[..., ::-1]
    view[..., 3] = 255
    return image


def rgb_from_qimage(image: QImage) -> np.ndarray:
    """A fresh ``(H, W, 3)`` uint8 RGB copy of an RGB32 image."""
    return _rgb32_const_view(image)[..., 2::-1].copy()


def pack_rgb(pixels: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB -> ``(...)`` uint32 0xRRGGBB, for exact colour comparisons."""
    p = pixels.astype(np.uint32)
    return (p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]


def quantize_to_palette(array: np.ndarray, palette: Palette) -> np.ndarray:
    """Replace every pixel by the nearest palette colour (squared RGB distance); exact colours stay."""
    check_rgb_array(array)
    colors = palette.colors.astype(np.int32)
    unique, inverse = np.unique(pack_rgb(array).ravel(), return_inverse=True)
    nearest = np.empty(unique.size, dtype=np.intp)
    for start in range(0, unique.size, 65536):
        chunk = unique[start:start + 65536]
        rgb = np.stack([(chunk >> 16) & 255, (chunk >> 8) & 255, chunk & 255], axis=1).astype(np.int32)
        nearest[start:start + chunk.size] = ((rgb[:, None, :] - colors[None]) ** 2).sum(-1).argmin(1)
    return palette.colors[nearest[inverse]].reshape(array.shape)


def is_blank(array: np.ndarray, rgb: Rgb) -> bool:
    """Whether every pixel of ``array`` is ``rgb`` (a fresh page)."""
    return bool((array == np.asarray(rgb, dtype=np.uint8)).all())


def scale_into(array: np.ndarray, width: int, height: int, background: Rgb, smooth: bool) -> np.ndarray:
    """``array`` scaled to fit ``width`` x ``height`` keeping its aspect, centred on ``background``.

    ``smooth`` interpolates (photos, sketches); otherwise nearest neighbours keep exact colours (label maps).
    """
    check_rgb_array(array)
    check_size(width, height)
    mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
    scaled = qimage_from_rgb(array).scaled(width, height, Qt.AspectRatioMode.KeepAspectRatio, mode)
    page = blank_image(width, height, background)
    painter = QPainter(page)
    painter.drawImage(QPoint((width - scaled.width()) // 2, (height - scaled.height()) // 2), scaled)
    painter.end()
    return rgb_from_qimage(page)


# --- flood fill -----------------------------------------------------------------------------------

def flood_fill_mask(rgb: np.ndarray, x: int, y: int) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the 4-connected region of pixels exactly equal to ``rgb[y, x]``.

    Run-based fill: numpy finds every horizontal run of the seed colour, then a plain-Python search
    walks from run to overlapping run in the rows above and below, visiting each run once. Even a
    512x512 field of noise fills in a fraction of a second.
    """
    packed = pack_rgb(rgb)
    same = packed == packed[y, x]
    h, w = same.shape
    rows, starts, ends, row_ptr = _runs(same)
    seed = bisect.bisect_right(starts, x, row_ptr[y], row_ptr[y + 1]) - 1
    visited = bytearray(len(starts))
    visited[seed] = 1
    stack = [seed]
    while stack:
        run = stack.pop()
        row, lo, hi = rows[run], starts[run], ends[run]
        for ny in (row - 1, row + 1):
            if not 0 <= ny < h:
                continue
            first, last = row_ptr[ny], row_ptr[ny + 1]
            j = bisect.bisect_right(ends, lo, first, last)  # first run in that row ending after ``lo``
            while j < last and starts[j] < hi:
                if not visited[j]:
                    visited[j] = 1
                    stack.append(j)
                j += 1
    return _paint_runs(np.frombuffer(bytes(visited), dtype=bool), rows, starts, ends, (h, w))


def _runs(same: np.ndarray) -> tuple[list[int], list[int], list[int], list[int]]:
    """Horizontal runs of True as parallel lists (row, start, end exclusive) plus per-row offsets."""
    h, w = same.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = same
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    row_ptr = np.searchsorted(rows, np.arange(h + 1))
    return rows.tolist(), starts.tolist(), ends.tolist(), row_ptr.tolist()


def _paint_runs(chosen: np.ndarray, rows: list[int], starts: list[int], ends: list[int],
                shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    edges = np.zeros((h, w + 1), dtype=np.int32)
    r = np.asarray(rows)[chosen]
    np.add.at(edges, (r, np.asarray(starts)[chosen]), 1)
    np.add.at(edges, (r, np.asarray(ends)[chosen]), -1)
    return np.cumsum(edges, axis=1)[:, :w] > 0


def mask_bounds(mask: np.ndarray) -> QRect:
    """Bounding rectangle of the True pixels (empty QRect when none)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return QRect()
    return QRect(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


# --- strokes --------------------------------------------------------------------------------------

class StrokeLayer:
    """The coverage of one stroke or shape, composited over a snapshot of the canvas taken at pen-down.

    Coverage is kept as the per-pixel maximum of every segment, so a semi-transparent pencil does not
    darken where its segments overlap. Aliased layers write the exact colour where coverage >= 50 %,
    so label and edge maps never gain in-between colours.
    """

    def __init__(self, base: QImage, target: QImage, color: Rgb, antialias: bool) -> None:
        self._base = base
        self._target = target
        self._bgr = np.array(color[::-1], dtype=np.uint16)
        self._antialias = antialias
        self._alpha = np.zeros((base.height(), base.width()), dtype=np.uint8)
        self._bounds = base.rect()
        self._shape_rect = QRect()

    def add_segment(self, p0: QPointF, p1: QPointF, width: float, opacity: float = 1.0) -> QRect:
        """Add a round-capped segment (a dab when ``p0 == p1``); return the image rect that changed."""
        rect = _padded(QRectF(p0, p1).normalized(), width) & self._bounds
        if rect.isEmpty():
            return rect
        mask = self._rasterize(rect, opacity, lambda painter: self._draw_segment(painter, p0, p1, width))
        region = self._alpha[_slices(rect)]
        np.maximum(region, mask, out=region)
        self._composite(rect)
        return rect

    def set_shape(self, tool: Tool, p0: QPointF, p1: QPointF, width: float, filled: bool,
                  opacity: float = 1.0) -> QRect:
        """Replace the layer by one line, rectangle or ellipse; return the image rect that changed."""
        old = self._shape_rect
        if not old.isEmpty():
            self._alpha[_slices(old)] = 0
        rect = _padded(QRectF(p0, p1).normalized(), width) & self._bounds
        if not rect.isEmpty():
            mask = self._rasterize(rect, opacity, lambda p: _draw_shape(p, tool, p0, p1, width, filled))
            self._alpha[_slices(rect)] = mask
        self._shape_rect = rect
        changed = old | rect
        if not changed.isEmpty():
            self._composite(changed)
        return changed

    def _draw_segment(self, painter: QPainter, p0: QPointF, p1: QPointF, width: float) -> None:
        if p0 == p1:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(p0, width / 2, width / 2)
            if not self._antialias:  # an aliased dab always covers the pixel under the cursor
                painter.drawRect(QRectF(math.floor(p0.x()), math.floor(p0.y()), 1, 1))
        else:
            _set_pen_width(painter, width)
            painter.drawLine(p0, p1)

    def _rasterize(self, rect: QRect, opacity: float, draw) -> np.ndarray:
        image = QImage(rect.width(), rect.height(), QImage.Format.Format_Alpha8)
        image.fill(Qt.GlobalColor.transparent)
        color = QColor(0, 0, 0, max(1, min(255, round(opacity * 255))))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, self._antialias)
        painter.translate(-rect.x(), -rect.y())
        painter.setPen(QPen(color, 1.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                            Qt.PenJoinStyle.RoundJoin))
        painter.setBrush(QBrush(color))
        draw(painter)
        painter.end()
        return _alpha_view(image).copy()

    def _composite(self, rect: QRect) -> None:
        sl = _slices(rect)
        alpha = self._alpha[sl]
        base = _rgb32_const_view(self._base)[sl]
        out = qimage_view(self._target)[sl]
        if self._antialias:
            a = alpha.astype(np.uint16)[..., None]
            out[..., :3] = (base[..., :3] * (255 - a) + self._bgr * a + 127) // 255
        else:
            out[...] = base
            out[alpha >= 128, :3] = self._bgr.astype(np.uint8)


def _draw_shape(painter: QPainter, tool: Tool, p0: QPointF, p1: QPointF, width: float, filled: bool) -> None:
    _set_pen_width(painter, width)
    if tool is Tool.RECTANGLE:
        pen = painter.pen()
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
    box = QRectF(p0, p1).normalized()
    if not filled:
        painter.setBrush(Qt.BrushStyle.NoBrush)
    elif tool is not Tool.LINE:  # a filled shape covers exactly the dragged box (corner pixels included), no rim
        painter.setPen(Qt.PenStyle.NoPen)
        box = box.adjusted(-0.5, -0.5, 0.5, 0.5)
    if tool is Tool.LINE:
        painter.drawLine(p0, p1)
    elif tool is Tool.RECTANGLE:
        painter.drawRect(box)
    else:
        painter.drawEllipse(box)


def _set_pen_width(painter: QPainter, width: float) -> None:
    pen = painter.pen()
    pen.setWidthF(width)
    painter.setPen(pen)


def _padded(rect: QRectF, width: float) -> QRect:
    pad = width / 2 + 2
    return rect.adjusted(-pad, -pad, pad, pad).toAlignedRect()


def _slices(rect: QRect) -> tuple[slice, slice]:
    return slice(rect.top(), rect.bottom() + 1), slice(rect.left(), rect.right() + 1)


def _rgb32_const_view(image: QImage) -> np.ndarray:
    h, w = image.height(), image.width()
    flat = np.frombuffer(image.constBits(), dtype=np.uint8)
    return flat.reshape(h, image.bytesPerLine())[:, : w * 4].reshape(h, w, 4)


# --- document -------------------------------------------------------------------------------------

UNDO_LIMIT = 200


class _ImageCommand(QUndoCommand):
    """Swap a patch of the image (``origin`` set) or the whole image (``origin`` None) before/after."""

    def __init__(self, document: CanvasDocument, text: str, before: QImage, after: QImage,
                 origin: QPoint | None, applied: bool) -> None:
        super().__init__(text)
        self._document, self._before, self._after, self._origin = document, before, after, origin
        self._applied = applied

    def redo(self) -> None:
        if self._applied:  # the edit is already on the canvas; only announce it
            self._applied = False
            self._document.content_changed.emit()
        else:
            self._document._put(self._after, self._origin)

    def undo(self) -> None:
        self._document._put(self._before, self._origin)


class CanvasDocument(QObject):
    """One RGB32 image and its undo stack. ``content_changed`` fires after every edit, undo and redo."""

    content_changed = Signal()
    size_changed = Signal(int, int)

    def __init__(self, width: int = 512, height: int = 512, background: Rgb = WHITE,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._image = blank_image(width, height, background)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)

    @property
    def image(self) -> QImage:
        """The live image; strokes write into it, so copy it before keeping it."""
        return self._image

    def size(self) -> QSize:
        return self._image.size()

    def pixel(self, x: int, y: int) -> Rgb:
        color = QColor(self._image.pixel(x, y))
        return color.red(), color.green(), color.blue()

    def to_numpy(self) -> np.ndarray:
        """A fresh ``(H, W, 3)`` uint8 RGB copy."""
        return rgb_from_qimage(self._image)

    def set_from_numpy(self, array: np.ndarray) -> None:
        """Replace the image (any size) without history; the undo stack is cleared."""
        self._replace(qimage_from_rgb(array))
        self.undo_stack.clear()
        self.content_changed.emit()

    def load(self, array: np.ndarray, text: str = "Load image") -> None:
        """Replace the image (any size) as one undo step."""
        self._push_replace(qimage_from_rgb(array), text)

    def fill(self, rgb: Rgb, text: str = "Clear") -> None:
        """Paint everything ``rgb`` as one undo step."""
        self._push_replace(blank_image(self._image.width(), self._image.height(), rgb), text)

    def resize(self, width: int, height: int, rgb: Rgb) -> None:
        """New blank ``width`` x ``height`` image of colour ``rgb`` as one undo step."""
        self._push_replace(blank_image(width, height, rgb), "Resize canvas")

    def flood_fill(self, x: int, y: int, rgb: Rgb) -> bool:
        """Fill the 4-connected exact-colour region at (x, y); False when nothing changed."""
        view = qimage_view(self._image)
        if tuple(int(c) for c in view[y, x, 2::-1]) == tuple(rgb):
            return False
        mask = flood_fill_mask(view[..., 2::-1], x, y)
        bounds = mask_bounds(mask)
        before = self._image.copy(bounds)
        view[mask, :3] = rgb[::-1]
        self._push(_ImageCommand(self, "Fill", before, self._image.copy(bounds), bounds.topLeft(), True))
        return True

    def commit_patch(self, text: str, snapshot: QImage, rect: QRect) -> None:
        """Record an edit already drawn into ``rect``; ``snapshot`` is the full image from before it."""
        rect = rect & self._image.rect()
        if rect.isEmpty():
            return
        before, after = snapshot.copy(rect), self._image.copy(rect)
        self._push(_ImageCommand(self, text, before, after, rect.topLeft(), True))

    def restore_patch(self, snapshot: QImage, rect: QRect) -> None:
        """Undo an unrecorded edit in ``rect`` by copying it back from ``snapshot``."""
        rect = rect & self._image.rect()
        if not rect.isEmpty():
            self._put(snapshot.copy(rect), rect.topLeft())

    def _push_replace(self, after: QImage, text: str) -> None:
        self._push(_ImageCommand(self, text, self._image.copy(), after, None, False))

    def _push(self, command: QUndoCommand) -> None:
        self.undo_stack.push(command)

    def _put(self, patch: QImage, origin: QPoint | None) -> None:
        if origin is None:
            self._replace(patch.copy())
        else:
            x, y, w, h = origin.x(), origin.y(), patch.width(), patch.height()
            qimage_view(self._image)[y:y + h, x:x + w] = _rgb32_const_view(patch)  # patch stays alive meanwhile
        self.content_changed.emit()

    def _replace(self, image: QImage) -> None:
        resized = image.size() != self._image.size()
        self._image = image
        if resized:
            self.size_changed.emit(image.width(), image.height())
