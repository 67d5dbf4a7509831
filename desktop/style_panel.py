"""The Style dock: inference options of the loaded model (CycleGAN's direction; SPADE's style image, seed and
"New style"). Controls a model does not take stay disabled, and a note says what it takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from desktop.output_view import qimage_from_array

DIRECTIONS = [("A -> B", "AtoB"), ("B -> A", "BtoA")]
THUMBNAIL = 72


class StylePanel(QWidget):
    """Emits ``options_changed`` whenever :meth:`options` would return something new.

    ``style_image_requested`` asks the window to pick an image file; it answers with :meth:`set_style_image`.
    """

    options_changed = Signal()
    style_image_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._supported: tuple[str, ...] = ()
        self._style_image: np.ndarray | None = None
        self.style_name = ""
        self.direction = QComboBox(self)
        for text, value in DIRECTIONS:
            self.direction.addItem(text, value)
        self.direction.currentIndexChanged.connect(self.options_changed)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The random style code (used when no style image is chosen)")
        self.seed.valueChanged.connect(self._seed_changed)
        self.new_style = QPushButton("New style", self)
        self.new_style.setToolTip("A new random style: the next seed, and no style image")
        self.new_style.clicked.connect(self._new_style)
        self.style_image = QPushButton("Style image...", self)
        self.style_image.setToolTip("Take the style (colours, look) of a photo")
        self.style_image.clicked.connect(self.style_image_requested)
        self.clear_style = QPushButton("Clear", self)
        self.clear_style.setToolTip("Forget the style image and use the seed again")
        self.clear_style.clicked.connect(lambda: self.set_style_image(None))
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(THUMBNAIL, THUMBNAIL)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        style_row = QHBoxLayout()
        style_row.addWidget(self.style_image)
        style_row.addWidget(self.clear_style)
        form = QFormLayout(self)
        form.addRow("Direction:", self.direction)
        form.addRow("Seed:", self.seed)
        form.addRow("", self.new_style)
        form.addRow("Style:", style_row)
        form.addRow("", self.thumbnail)
        form.addRow(self.note)
        self.set_supported(())
        self._show_style()

    @property
    def style_array(self) -> np.ndarray | None:
        """The chosen style image (RGB uint8), or None."""
        return self._style_image

    def set_supported(self, options: tuple[str, ...]) -> None:
        """Enable the controls of the options the loaded model takes (names from ``Family.infer``)."""
        self._supported = tuple(options)
        self.direction.setEnabled("direction" in options)
        self.seed.setEnabled("seed" in options)
        self.new_style.setEnabled("seed" in options)
        self.style_image.setEnabled("style" in options)
        self.clear_style.setEnabled("style" in options and self._style_image is not None)
        self.thumbnail.setVisible("style" in options)
        names = {"direction": "direction", "seed": "seed", "style": "style image"}
        shown = [names[name] for name in names if name in options]
        self.note.setText("This model takes: " + ", ".join(shown) if shown else
                          "This model has no style options.")

    def set_style_image(self, image: np.ndarray | None, name: str = "") -> None:
        """Use ``image`` (RGB uint8) as the style, or the seed again with None."""
        self._style_image = None if image is None else np.ascontiguousarray(image[:, :, :3])
        self.style_name = name if image is not None else ""
        self.clear_style.setEnabled("style" in self._supported and image is not None)
        self._show_style()
        self.options_changed.emit()

    def options(self) -> dict[str, Any]:
        """Keyword options for ``InferenceSession.translate``, only those the model takes."""
        out: dict[str, Any] = {}
        if "direction" in self._supported:
            out["direction"] = self.direction.currentData()
        if "style" in self._supported and self._style_image is not None:
            out["style"] = self._style_image
        elif "seed" in self._supported:
            out["seed"] = self.seed.value()
        return out

    def _show_style(self) -> None:
        if self._style_image is None:
            self.thumbnail.clear()
            self.thumbnail.setText("(seed)")
            self.thumbnail.setToolTip("No style image: the seed picks the style")
            return
        pixmap = QPixmap.fromImage(qimage_from_array(self._style_image))
        self.thumbnail.setPixmap(pixmap.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
        self.thumbnail.setToolTip(f"Style image: {self.style_name}")

    def _seed_changed(self) -> None:
        if self._style_image is not None:
            self.set_style_image(None)  # touching the seed goes back to seeded styles (emits)
        else:
            self.options_changed.emit()

    def _new_style(self) -> None:
        self.seed.blockSignals(True)
        self.seed.setValue((self.seed.value() * 1103515245 + 12345) % 2**31)
        self.seed.blockSignals(False)
        self.set_style_image(None)  # emits options_changed once
