"""The drawing canvas: a document (one RGB32 QImage plus its undo history) and the widget that paints it.

Four modes decide how strokes look:

* ``label``: palette colours, aliased everywhere, so every pixel stays an exact palette colour;
  the eraser paints the palette's background class.
* ``edges``: a thin aliased black pen on white; the eraser paints white.
* ``sketch``: an anti-aliased grey pencil whose width and opacity follow tablet pressure
  (the mouse draws at pressure 0.5); the eraser paints white.
* ``photo``: an imported photo (CycleGAN input) painted over with an anti-aliased colour brush that follows
  pressure like the pencil; the eraser paints white.

Every stroke, shape, fill, clear, resize and import is one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from desktop.canvas_tools import (
    BLACK,
    DEFAULT_PALETTE,
    SHAPE_TOOLS,
    WHITE,
    CanvasDocument,
    CanvasMode,
    Palette,
    Rgb,
    StrokeLayer,
    Tool,
    check_rgb_array,
    quantize_to_palette,
    scale_into,
)

__all__ = ["CanvasDocument", "CanvasMode", "CanvasWidget", "Palette", "Tool"]

MIN_ZOOM, MAX_ZOOM = 0.05, 64.0
MIN_BRUSH, MAX_BRUSH = 1, 256
MOUSE_PRESSURE = 0.5


@dataclass(frozen=True)
class _ModeStyle:
    antialias: bool
    pressure: bool
    default_size: int


_STYLES = {
    CanvasMode.LABEL: _ModeStyle(antialias=False, pressure=False, default_size=12),
    CanvasMode.EDGES: _ModeStyle(antialias=False, pressure=False, default_size=2),
    CanvasMode.SKETCH: _ModeStyle(antialias=True, pressure=True, default_size=3),
    CanvasMode.PHOTO: _ModeStyle(antialias=True, pressure=True, default_size=8),
}
SKETCH_GREY: Rgb = (64, 64, 64)
PHOTO_PAINT: Rgb = (90, 70, 50)


@dataclass
class _Gesture:
    """A stroke or shape between pen-down and pen-up."""

    tool: Tool
    snapshot: QImage
    layer: StrokeLayer
    start: QPointF
    last: QPointF
    pressure: float
    dirty: QRect = field(default_factory=QRect)


class CanvasWidget(QWidget):
    """A zoomable painting surface over a :class:`CanvasDocument`.

    Mouse: left button draws with the current tool, middle button or space + left pans, the wheel
    zooms about the cursor. Keys: ``[`` / ``]`` brush size, Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo / redo,
    Escape cancels the stroke in progress, B E G L R O I pick a tool, F fills shapes or not, Shift constrains
    shapes.
    """

    stroke_progress = Signal()  # at most once per pointer event while a stroke or shape is drawn
    stroke_finished = Signal()  # once per completed stroke, shape or fill
    content_changed = Signal()  # after any change to the pixels, undo and redo included
    color_picked = Signal(tuple)  # (r, g, b) from the eyedropper
    color_changed = Signal(tuple)
    brush_size_changed = Signal(int)
    tool_changed = Signal(str)
    fill_shapes_changed = Signal(bool)
    mode_changed = Signal(str)
    view_changed = Signal(float, QPointF)  # zoom, widget position of the image's top-left corner

    _TOOL_KEYS = {Qt.Key.Key_B: Tool.BRUSH, Qt.Key.Key_E: Tool.ERASER, Qt.Key.Key_G: Tool.FILL,
                  Qt.Key.Key_L: Tool.LINE, Qt.Key.Key_R: Tool.RECTANGLE, Qt.Key.Key_O: Tool.ELLIPSE,
                  Qt.Key.Key_I: Tool.EYEDROPPER}

    def __init__(self, width: int = 512, height: int = 512, mode: str = "label",
                 palette: Palette | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._mode = CanvasMode(mode)
        self._palette = palette or DEFAULT_PALETTE
        self._colors: dict[CanvasMode, Rgb] = {CanvasMode.LABEL: self._first_label_color(),
                                               CanvasMode.EDGES: BLACK, CanvasMode.SKETCH: SKETCH_GREY,
                                               CanvasMode.PHOTO: PHOTO_PAINT}
        self._sizes = {m: style.default_size for m, style in _STYLES.items()}
        self._tool = Tool.BRUSH
        self._fill_shapes = {m: m is CanvasMode.LABEL for m in CanvasMode}  # label maps need solid regions
        self._zoom, self._offset, self._auto_fit = 1.0, QPointF(0, 0), True
        self._gesture: _Gesture | None = None
        self._pan_from: QPointF | None = None
        self._space_held = False
        self._hover: QPointF | None = None
        self._document = CanvasDocument(width, height, self.background_color, self)
        self._document.content_changed.connect(self._on_content_changed)
        self._document.size_changed.connect(self._on_size_changed)
        self.undo_action = self._make_action(self._document.undo_stack.createUndoAction(self, "Undo"),
                                             [QKeySequence("Ctrl+Z")])
        self.redo_action = self._make_action(self._document.undo_stack.createRedoAction(self, "Redo"),
                                             [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(64, 64)

    # --- document -------------------------------------------------------------------------------
    @property
    def document(self) -> CanvasDocument:
        return self._document

    def to_numpy(self) -> np.ndarray:
        """The canvas as a fresh ``(H, W, 3)`` uint8 RGB array."""
        return self._document.to_numpy()

    def set_from_numpy(self, array: np.ndarray) -> None:
        """Show ``array`` without history (clears undo); label mode snaps it to the palette."""
        self._cancel_gesture()
        self._document.set_from_numpy(self._conform(array))

    def load_image(self, array: np.ndarray, text: str = "Load image") -> None:
        """Import ``array`` as one undo step named ``text``; label mode snaps it to the nearest palette colours."""
        self._cancel_gesture()
        self._document.load(self._conform(array), text)

    def clear(self) -> None:
        """Fill with the mode's background (undoable)."""
        self._cancel_gesture()
        self._document.fill(self.background_color)

    def resize_canvas(self, width: int, height: int) -> None:
        """Resize the canvas, scaling the drawing to fit (aspect kept, the rest in the background colour), as one
        undo step."""
        self._cancel_gesture()
        if (width, height) != (self._document.size().width(), self._document.size().height()):
            self._document.load(self.scaled_drawing(self.to_numpy(), width, height), "Resize canvas")

    def scaled_drawing(self, array: np.ndarray, width: int, height: int) -> np.ndarray:
        """``array`` scaled for a ``width`` x ``height`` canvas in the current mode: label maps keep exact
        colours (nearest neighbours), edges stay black on white, sketches and photos are interpolated."""
        smooth = self._mode is not CanvasMode.LABEL
        scaled = scale_into(array, width, height, self.background_color, smooth)
        if self._mode is CanvasMode.EDGES:  # thin lines grey out when shrunk: keep them as ink
            scaled = np.where(scaled.min(axis=2, keepdims=True) < 192, 0, 255).astype(np.uint8).repeat(3, axis=2)
        return self._conform(scaled)

    def undo(self) -> None:
        self._cancel_gesture()
        self._document.undo_stack.undo()

    def redo(self) -> None:
        self._cancel_gesture()
        self._document.undo_stack.redo()

    # --- mode, palette, colour, tool, size -------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode.value

    def set_mode(self, mode: str) -> None:
        """Switch stroke style; pixels are untouched (call :meth:`clear` for a fresh page)."""
        self._cancel_gesture()
        self._mode = CanvasMode(mode)
        self.mode_changed.emit(self._mode.value)
        self.fill_shapes_changed.emit(self.fill_shapes)
        self.color_changed.emit(self.color)
        self.brush_size_changed.emit(self.brush_size)

    @property
    def label_palette(self) -> Palette:
        return self._palette

    def set_palette(self, entries: Palette | list[tuple[str, tuple[int, int, int]]], background: int = 0) -> None:
        """Label classes as ``[(name, (r, g, b)), ...]`` and the eraser's background index."""
        self._palette = entries if isinstance(entries, Palette) else Palette.from_entries(entries, background)
        if self._palette.id_of_color(self._colors[CanvasMode.LABEL]) is None:
            self._colors[CanvasMode.LABEL] = self._first_label_color()
            if self._mode is CanvasMode.LABEL:
                self.color_changed.emit(self.color)

    @property
    def background_color(self) -> Rgb:
        return self._palette.background_color if self._mode is CanvasMode.LABEL else WHITE

    @property
    def color(self) -> Rgb:
        return self._colors[self._mode]

    def set_color(self, rgb: tuple[int, int, int]) -> None:
        """Pen colour: a palette colour in label mode, black or white in edges mode, any in sketch and photo."""
        rgb = tuple(int(c) for c in rgb)
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise ValueError(f"colour {rgb!r} is not three ints in 0..255")
        if self._mode is CanvasMode.LABEL and self._palette.id_of_color(rgb) is None:
            raise ValueError(f"colour {rgb} is not in the label palette {self._palette.colors.tolist()}")
        if self._mode is CanvasMode.EDGES and rgb not in (BLACK, WHITE):
            raise ValueError(f"edges mode draws black or white only, got {rgb}")
        self._colors[self._mode] = rgb  # type: ignore[assignment]
        self.color_changed.emit(rgb)

    @property
    def tool(self) -> str:
        return self._tool.value

    def set_tool(self, tool: str) -> None:
        self._cancel_gesture()
        self._tool = Tool(tool)
        self.tool_changed.emit(self._tool.value)
        self.update()

    @property
    def fill_shapes(self) -> bool:
        """Rectangles and ellipses are filled (remembered per mode; on by default for label maps)."""
        return self._fill_shapes[self._mode]

    @fill_shapes.setter
    def fill_shapes(self, filled: bool) -> None:
        if bool(filled) != self._fill_shapes[self._mode]:
            self._fill_shapes[self._mode] = bool(filled)
            self.fill_shapes_changed.emit(bool(filled))

    @property
    def brush_size(self) -> int:
        """Pen diameter in image pixels (remembered per mode)."""
        return self._sizes[self._mode]

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))
        if size != self._sizes[self._mode]:
            self._sizes[self._mode] = size
            self.brush_size_changed.emit(size)
            self.update()

    # --- view -------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def offset(self) -> QPointF:
        return QPointF(self._offset)

    def set_view(self, zoom: float, offset: QPointF) -> None:
        """Show the image scaled by ``zoom`` with its top-left corner at widget point ``offset``."""
        self._auto_fit = False
        self._apply_view(zoom, offset)

    def zoom_about(self, factor: float, anchor: QPointF) -> None:
        """Zoom by ``factor`` keeping the image point under widget point ``anchor`` in place."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, self._zoom * factor))
        scale = zoom / self._zoom
        self.set_view(zoom, anchor - (anchor - self._offset) * scale)

    def zoom_in(self) -> None:
        self.zoom_about(1.25, QPointF(self.width() / 2, self.height() / 2))

    def zoom_out(self) -> None:
        self.zoom_about(1 / 1.25, QPointF(self.width() / 2, self.height() / 2))

    def zoom_actual(self) -> None:
        """100 %: one image pixel per screen pixel, about the view's centre."""
        self.zoom_about(1.0 / self._zoom, QPointF(self.width() / 2, self.height() / 2))

    def fit_to_view(self) -> None:
        """Fit and centre the image; it stays fitted on widget resizes until the user zooms or pans."""
        self._auto_fit = True
        size = self._document.size()
        zoom = max(MIN_ZOOM, min(self.width() / size.width(), self.height() / size.height()) * 0.95)
        offset = QPointF((self.width() - size.width() * zoom) / 2, (self.height() - size.height() * zoom) / 2)
        self._apply_view(zoom, offset)

    def map_to_image(self, pos: QPointF) -> QPointF:
        """Widget coordinates -> image coordinates (pixel (x, y) spans x..x+1)."""
        return (pos - self._offset) / self._zoom

    def _apply_view(self, zoom: float, offset: QPointF) -> None:
        self._zoom = max(MIN_ZOOM, min(MAX_ZOOM, float(zoom)))
        self._offset = QPointF(offset)
        self.view_changed.emit(self._zoom, QPointF(self._offset))
        self.update()

    def _widget_rect(self, rect: QRect | QRectF) -> QRect:
        r = QRectF(rect)
        mapped = QRectF(r.x() * self._zoom + self._offset.x(), r.y() * self._zoom + self._offset.y(),
                        r.width() * self._zoom, r.height() * self._zoom)
        return mapped.toAlignedRect().adjusted(-2, -2, 2, 2)

    # --- gestures ---------------------------------------------------------------------------------
    def _image_point(self, pos: QPointF) -> QPointF:
        p = self.map_to_image(pos)
        if _STYLES[self._mode].antialias:
            return p
        return QPointF(np.floor(p.x()) + 0.5, np.floor(p.y()) + 0.5)  # aliased pens sit on pixel centres

    def _begin(self, pos: QPointF, pressure: float) -> None:
        p = self._image_point(pos)
        if self._tool is Tool.EYEDROPPER:
            self._pick(p)
        elif self._tool is Tool.FILL:
            self._fill(p)
        else:
            color = self.background_color if self._tool is Tool.ERASER else self.color
            snapshot = self._document.image.copy()
            layer = StrokeLayer(snapshot, self._document.image, color, _STYLES[self._mode].antialias)
            self._gesture = _Gesture(self._tool, snapshot, layer, p, p, pressure)
            self._extend(pos, pressure, Qt.KeyboardModifier.NoModifier)

    def _extend(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        g = self._gesture
        assert g is not None
        p = self._image_point(pos)
        width, opacity = self._pen(pressure if self._tool is not Tool.ERASER else max(pressure, MOUSE_PRESSURE))
        if g.tool in SHAPE_TOOLS:
            if modifiers & Qt.KeyboardModifier.ShiftModifier:
                p = _constrained(g.tool, g.start, p)
            changed = g.layer.set_shape(g.tool, g.start, p, width, self.fill_shapes, opacity)
        else:
            opacity = 1.0 if g.tool is Tool.ERASER else opacity
            changed = g.layer.add_segment(g.last, p, width, opacity)
        g.last, g.dirty = p, g.dirty | changed
        if not changed.isEmpty():
            self.update(self._widget_rect(changed))
        self.stroke_progress.emit()

    def _finish(self) -> None:
        g, self._gesture = self._gesture, None
        if g is None:
            return
        self._document.commit_patch(g.tool.value.capitalize(), g.snapshot, g.dirty)
        self.stroke_finished.emit()

    def _cancel_gesture(self) -> None:
        g, self._gesture = self._gesture, None
        if g is not None:
            self._document.restore_patch(g.snapshot, g.dirty)

    def _pen(self, pressure: float) -> tuple[float, float]:
        """Width and opacity for ``pressure`` in 0..1; only sketch mode responds to it."""
        size = float(self.brush_size)
        if not _STYLES[self._mode].pressure:
            return size, 1.0
        pressure = max(0.0, min(1.0, pressure))
        return max(0.5, size * (0.4 + 1.2 * pressure)), min(1.0, 0.25 + pressure)

    def _pick(self, p: QPointF) -> None:
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        if not self._document.image.rect().contains(x, y):
            return
        rgb = self._document.pixel(x, y)
        self.color_picked.emit(rgb)
        try:
            self.set_color(rgb)
        except ValueError:
            pass  # e.g. a non-palette colour left from another mode: report it, keep the pen

    def _fill(self, p: QPointF) -> None:
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        if self._document.image.rect().contains(x, y) and self._document.flood_fill(x, y, self.color):
            self.stroke_finished.emit()

    # --- events -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self._gesture is None:
            self._begin(pos, MOUSE_PRESSURE)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta, self._pan_from = pos - self._pan_from, pos
            self.set_view(self._zoom, self._offset + delta)
        elif self._gesture is not None:
            self._extend(pos, MOUSE_PRESSURE, event.modifiers())
        self._move_hover(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                             Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.setCursor(Qt.CursorShape.OpenHandCursor if self._space_held else Qt.CursorShape.CrossCursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            self._finish()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        event.accept()  # the default would start a second stroke inside the first

    def tabletEvent(self, event: QTabletEvent) -> None:
        kind, pos, pressure = event.type(), event.position(), event.pressure()
        if kind == QEvent.Type.TabletPress and self._gesture is None and not self._space_held:
            self._begin(pos, pressure)
        elif kind == QEvent.Type.TabletMove and self._gesture is not None:
            self._extend(pos, pressure, event.modifiers())
        elif kind == QEvent.Type.TabletRelease and self._gesture is not None:
            self._finish()
        else:
            event.ignore()  # let Qt synthesise mouse events (panning with the pen's buttons)
            return
        self._move_hover(pos)
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120 or event.angleDelta().x() / 120
        if steps:
            self.zoom_about(1.25 ** steps, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if ctrl and (key == Qt.Key.Key_Y or (key == Qt.Key.Key_Z and shift)):
            self.redo()
        elif ctrl and key == Qt.Key.Key_Z:
            self.undo()
        elif key == Qt.Key.Key_BracketLeft:
            self.brush_size -= max(1, self.brush_size // 8)
        elif key == Qt.Key.Key_BracketRight:
            self.brush_size += max(1, self.brush_size // 8)
        elif key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = True
                self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape:
            self._cancel_gesture()
        elif key == Qt.Key.Key_F and not ctrl:
            self.fill_shapes = not self.fill_shapes
        elif key in self._TOOL_KEYS and not ctrl:
            self.set_tool(self._TOOL_KEYS[key].value)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if self._pan_from is None:
                self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            super().keyReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._move_hover(None)
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self._auto_fit:
            self.fit_to_view()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), self.palette().color(QPalette.ColorRole.Dark))  # as the output view
        painter.save()
        painter.translate(self._offset)
        painter.scale(self._zoom, self._zoom)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 1)
        painter.drawImage(QPoint(0, 0), self._document.image)
        painter.restore()
        outline = self._outline_rect()
        if not outline.isNull():
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            for color, width in ((QColor(255, 255, 255, 200), 3.0), (QColor(0, 0, 0, 220), 1.0)):
                painter.setPen(QPen(color, width))
                painter.drawEllipse(outline)
        painter.end()

    # --- helpers ----------------------------------------------------------------------------------
    def _outline_rect(self) -> QRectF:
        """The brush outline around the hovered point, in widget coordinates (null when hidden)."""
        if self._hover is None or self._tool in (Tool.FILL, Tool.EYEDROPPER) or self._pan_from is not None:
            return QRectF()
        radius = max(2.0, self.brush_size * self._zoom / 2)
        return QRectF(self._hover.x() - radius, self._hover.y() - radius, 2 * radius, 2 * radius)

    def _move_hover(self, pos: QPointF | None) -> None:
        old = self._outline_rect()
        self._hover = QPointF(pos) if pos is not None else None
        for rect in (old, self._outline_rect()):
            if not rect.isNull():
                self.update(rect.toAlignedRect().adjusted(-3, -3, 3, 3))

    def _conform(self, array: np.ndarray) -> np.ndarray:
        check_rgb_array(array)
        return quantize_to_palette(array, self._palette) if self._mode is CanvasMode.LABEL else array

    def _first_label_color(self) -> Rgb:
        colors = [c.color for c in self._palette.classes]
        return next((c for i, c in enumerate(colors) if i != self._palette.background), colors[0])

    def _make_action(self, action: QAction, shortcuts: list[QKeySequence]) -> QAction:
        action.setShortcuts(shortcuts)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        return action

    def _on_content_changed(self) -> None:
        self.update()
        self.content_changed.emit()

    def _on_size_changed(self, width: int, height: int) -> None:
        if self._auto_fit:
            self.fit_to_view()
        self.update()


def _constrained(tool: Tool, start: QPointF, p: QPointF) -> QPointF:
    """Shift-drag: squares and circles, or lines snapped to 45 degrees."""
    d = p - start
    if tool is Tool.LINE:
        angle = round(np.arctan2(d.y(), d.x()) / (np.pi / 4)) * (np.pi / 4)
        length = float(np.hypot(d.x(), d.y()))
        return start + QPointF(length * np.cos(angle), length * np.sin(angle))
    side = max(abs(d.x()), abs(d.y()))
    return start + QPointF(side if d.x() >= 0 else -side, side if d.y() >= 0 else -side)
