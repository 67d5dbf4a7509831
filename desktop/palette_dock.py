"""The Palette dock: label classes as swatches in label mode, black/white in edges mode, any colour in sketch.

:func:`palette_for_model` loads a label palette of the engine (``engine.data.palette.Palette``, the one palette type
the canvas draws in too); it returns None when the engine has no such palette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QKeySequence, QPainter, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QColorDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas_tools import BLACK, DEFAULT_PALETTE, WHITE, Palette, Rgb
from engine.api import GanvasError

if TYPE_CHECKING:
    from engine.api import Engine

SWATCH = 18


def palette_name_of(card: Any) -> str | None:
    """The label palette a model card names (``dataset.palette`` or ``config.palette``), if any."""
    for source in (getattr(card, "dataset", None) or {}, getattr(card, "config", None) or {}):
        name = source.get("palette")
        if isinstance(name, str) and name:
            return name
    return None


def palette_for_model(engine: Engine | None, name: str) -> Palette | None:
    """The engine palette ``name``; None when the engine is not loaded or the palette is unknown or malformed
    (the canvas then stays on its palette)."""
    if engine is None:
        return None
    try:
        return engine.load_palette(name)
    except GanvasError:
        return None


def swatch_icon(rgb: Rgb) -> QIcon:
    """A colour square with a frame in the theme's text colour (so white shows on a white list)."""
    pixmap = QPixmap(SWATCH, SWATCH)
    pixmap.fill(QColor(*rgb))
    painter = QPainter(pixmap)
    painter.setPen(QGuiApplication.palette().color(QPalette.ColorRole.Text))
    painter.drawRect(0, 0, SWATCH - 1, SWATCH - 1)
    painter.end()
    return QIcon(pixmap)


FREE_COLOUR_MODES = ("sketch", "photo")  # canvas modes drawn in any colour (a colour button, no list)

class PalettePanel(QWidget):
    """Pick the pen colour for the canvas's current mode; emits ``color_chosen((r, g, b))``."""

    color_chosen = Signal(tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._palette = DEFAULT_PALETTE
        self._mode = "edges"
        self._sketch_color: Rgb = (64, 64, 64)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(SWATCH, SWATCH))
        self.list.currentRowChanged.connect(self._row_chosen)
        self.color_button = QPushButton("Choose colour...", self)
        self.color_button.clicked.connect(self._choose_sketch_color)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.color_button)
        self.shortcuts = []
        for number in range(10):  # 1..9 then 0 pick the first ten entries, wherever focus is in the window
            shortcut = QShortcut(QKeySequence(str((number + 1) % 10)), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(lambda row=number: self.choose_row(row))
            self.shortcuts.append(shortcut)
        self._rebuild()

    def choose_row(self, row: int) -> None:
        """Select entry ``row`` (as its number key does); rows past the end are ignored."""
        if self._mode not in FREE_COLOUR_MODES and 0 <= row < self.list.count():
            if self.list.currentRow() == row:
                self._row_chosen(row)  # re-pick: the canvas may have another colour by now (eyedropper)
            else:
                self.list.setCurrentRow(row)  # emits through currentRowChanged

    @property
    def palette_entries(self) -> Palette:
        return self._palette

    def set_palette(self, palette: Palette) -> None:
        self._palette = palette
        self._rebuild()

    def set_mode(self, mode: str) -> None:
        self._mode = mode
        self._rebuild()

    def set_current(self, rgb: tuple) -> None:
        """Highlight the entry of ``rgb`` (e.g. after the eyedropper) without emitting."""
        rgb = tuple(rgb)
        if self._mode in FREE_COLOUR_MODES:
            self._sketch_color = rgb  # type: ignore[assignment]
            self.color_button.setIcon(swatch_icon(rgb))  # type: ignore[arg-type]
            return
        for row in range(self.list.count()):
            if tuple(self.list.item(row).data(Qt.ItemDataRole.UserRole)) == rgb:
                self.list.blockSignals(True)
                self.list.setCurrentRow(row)
                self.list.blockSignals(False)

    def _entries(self) -> list[tuple[str, Rgb]]:
        if self._mode == "label":
            return self._palette.entries
        if self._mode == "edges":
            return [("edge (black)", BLACK), ("paper (white)", WHITE)]
        return []

    def _rebuild(self) -> None:
        titles = {"label": "Label classes: each colour is one class the model knows.",
                  "edges": "Edges: black lines on white.",
                  "sketch": "Sketch: any colour; the pencil follows pen pressure.",
                  "photo": "Photo: paint over it in any colour; the brush follows pen pressure."}
        self.title.setText(titles.get(self._mode, ""))
        self.list.blockSignals(True)
        self.list.clear()
        for name, rgb in self._entries():
            item = QListWidgetItem(swatch_icon(rgb), name)
            item.setData(Qt.ItemDataRole.UserRole, rgb)
            shortcut = f" (key {(self.list.count() + 1) % 10})" if self.list.count() < 10 else ""
            item.setToolTip(f"{name}: RGB {rgb}{shortcut}")
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.list.setVisible(self._mode not in FREE_COLOUR_MODES)
        self.color_button.setVisible(self._mode in FREE_COLOUR_MODES)
        self.color_button.setIcon(swatch_icon(self._sketch_color))

    def _row_chosen(self, row: int) -> None:
        if row >= 0:
            self.color_chosen.emit(tuple(self.list.item(row).data(Qt.ItemDataRole.UserRole)))

    def _choose_sketch_color(self) -> None:
        color = QColorDialog.getColor(QColor(*self._sketch_color), self, "Sketch colour")
        if color.isValid():
            self.set_current((color.red(), color.green(), color.blue()))
            self.color_chosen.emit(self._sketch_color)
