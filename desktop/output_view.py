"""The live output beside the canvas: same zoom and position as the canvas, optional compare split.

:class:`OutputView` paints the model's output in the rectangle where the canvas shows its image, so the
two stay aligned as the artist zooms and pans (it follows ``CanvasWidget.view_changed``). With compare on,
the part left of a draggable divider shows the drawing and the part right of it the output.
:class:`OutputPanel` adds the output actions below it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas_tools import check_rgb_array


def qimage_from_array(array: np.ndarray) -> QImage:
    """A QImage owning a copy of an ``(H, W, 3)`` uint8 RGB array."""
    check_rgb_array(array)
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class OutputView(QWidget):
    """Shows the output image aligned with the canvas view; drag the divider when comparing."""

    split_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._output: QImage | None = None
        self._array: np.ndarray | None = None
        self._input: QImage | None = None
        self._zoom, self._offset = 1.0, QPointF(0, 0)
        self._image_size = QSize(256, 256)  # the canvas image size the view maps
        self._source_size: QSize | None = None
        self._compare = False
        self._split = 0.5
        self._dragging = False
        self._message = "No output yet"
        self.setMinimumSize(64, 64)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # --- content ----------------------------------------------------------------------------------
    def set_output(self, array: np.ndarray | None) -> None:
        """Show ``array`` (RGB uint8) or nothing."""
        self._array = None if array is None else np.array(array, copy=True)
        self._output = None if array is None else qimage_from_array(array)
        self.update()

    def output_array(self) -> np.ndarray | None:
        """The output shown now (a copy), or None."""
        return None if self._array is None else self._array.copy()

    def has_output(self) -> bool:
        return self._output is not None

    def set_input(self, image: QImage) -> None:
        """The drawing shown left of the divider in compare mode (the canvas image; not copied)."""
        self._input = image
        if self._compare:
            self.update()

    def set_message(self, text: str) -> None:
        """Text shown while there is no output (e.g. "Loading engine...")."""
        self._message = text
        if self._output is None:
            self.update()

    # --- view -------------------------------------------------------------------------------------
    def set_view(self, zoom: float, offset: QPointF, image_size: QSize, source_size: QSize | None = None) -> None:
        """Mirror the canvas: its image of ``image_size`` is drawn scaled by ``zoom`` at ``offset``.

        ``source_size`` is the canvas widget's size; when this view is larger or smaller, the image shifts by
        half the difference so that it sits at the same place relative to the view's centre.
        """
        self._zoom, self._offset, self._image_size = float(zoom), QPointF(offset), QSize(image_size)
        self._source_size = QSize(source_size) if source_size is not None else None
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image lies in widget coordinates."""
        x, y = self._offset.x(), self._offset.y()
        if self._source_size is not None:
            x += (self.width() - self._source_size.width()) / 2
            y += (self.height() - self._source_size.height()) / 2
        return QRectF(x, y, self._image_size.width() * self._zoom, self._image_size.height() * self._zoom)

    # --- compare ----------------------------------------------------------------------------------
    @property
    def compare(self) -> bool:
        return self._compare

    def set_compare(self, on: bool) -> None:
        self._compare = bool(on)
        self.setCursor(Qt.CursorShape.SplitHCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    @property
    def split(self) -> float:
        """Divider position across the image, 0 (all output) .. 1 (all drawing)."""
        return self._split

    def set_split(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction != self._split:
            self._split = fraction
            self.split_changed.emit(fraction)
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._compare and event.button() == Qt.MouseButton.LeftButton:
            self._dragging = True
            self._split_at(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._split_at(event.position().x())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = False

    def _split_at(self, x: float) -> None:
        rect = self.image_rect()
        if rect.width() > 0:
            self.set_split((x - rect.x()) / rect.width())

    # --- painting ---------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(event.rect(), palette.color(QPalette.ColorRole.Dark))
        rect = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 1)
        if self._output is None:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Mid))
            painter.setPen(palette.color(QPalette.ColorRole.BrightText))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        else:
            painter.drawImage(rect, self._output)
        if self._compare and self._input is not None:
            self._paint_split(painter, rect)
        painter.end()

    def _paint_split(self, painter: QPainter, rect: QRectF) -> None:
        x = rect.x() + rect.width() * self._split
        left = QRectF(rect.x(), rect.y(), x - rect.x(), rect.height())
        source = QRectF(0, 0, self._input.width() * self._split, self._input.height())
        painter.drawImage(left, self._input, source)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 2))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))


class OutputPanel(QWidget):
    """The output view with its action row: save, copy, use as input, compare and the split slider."""

    save_requested = Signal()
    copy_requested = Signal()
    use_as_input_requested = Signal()
    compare_available_changed = Signal(bool)  # compare needs a drawing (not in the latent editor)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = OutputView(self)
        self.save_button = self._button("Save PNG...", "Save the output as a PNG file", self.save_requested)
        self.copy_button = self._button("Copy", "Copy the output to the clipboard", self.copy_requested)
        self.use_button = self._button("Use as input", "Load the output into the canvas (undoable)",
                                       self.use_as_input_requested)
        self.compare_box = QCheckBox("Compare", self)
        self.compare_box.setToolTip("Show the drawing left of a divider and the output right of it")
        self.split_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.split_slider.setRange(0, 1000)
        self.split_slider.setValue(500)
        self.split_slider.setEnabled(False)
        self.split_slider.setToolTip("Divider between drawing and output (or drag in the view)")
        self.compare_box.toggled.connect(self._set_compare)
        self.split_slider.valueChanged.connect(self._slider_moved)
        self.view.split_changed.connect(self._view_split_changed)
        self.action_bar = QWidget(self)  # the canvas column gets a bar of the same height: views stay aligned
        row = QHBoxLayout(self.action_bar)
        row.setContentsMargins(4, 2, 4, 2)
        for widget in (self.save_button, self.copy_button, self.use_button, self.compare_box):
            row.addWidget(widget)
        row.addWidget(self.split_slider, 1)
        self.action_bar.setFixedHeight(self.action_bar.sizeHint().height())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.action_bar)
        self.set_actions_enabled(False)

    def set_actions_enabled(self, enabled: bool) -> None:
        """Output actions make sense only while an output is shown."""
        for button in (self.save_button, self.copy_button, self.use_button):
            button.setEnabled(enabled)

    def set_compare_available(self, available: bool) -> None:
        """Offer compare (box and menu action) only where there is a drawing to compare with."""
        if not available:
            self.compare_box.setChecked(False)
        self.compare_box.setEnabled(available)
        self.compare_available_changed.emit(available)

    def _button(self, text: str, tip: str, signal: Signal) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.clicked.connect(signal)
        return button

    def _set_compare(self, on: bool) -> None:
        self.split_slider.setEnabled(on)
        self.view.set_compare(on)

    def _slider_moved(self, value: int) -> None:
        self.view.set_split(value / 1000)

    def _view_split_changed(self, fraction: float) -> None:
        self.split_slider.blockSignals(True)
        self.split_slider.setValue(round(fraction * 1000))
        self.split_slider.blockSignals(False)
