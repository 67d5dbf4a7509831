"""The Style dock: inference options of the loaded model (CycleGAN's direction; seed and style controls
for families that take them). Controls a model does not support stay disabled and say why.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QSpinBox, QWidget

DIRECTIONS = [("A -> B", "AtoB"), ("B -> A", "BtoA")]


class StylePanel(QWidget):
    """Emits ``options_changed`` whenever :meth:`options` would return something new."""

    options_changed = Signal()
    style_image_requested = Signal()  # placeholder: no family takes a style image yet

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._supported: tuple[str, ...] = ()
        self.direction = QComboBox(self)
        for text, value in DIRECTIONS:
            self.direction.addItem(text, value)
        self.direction.currentIndexChanged.connect(self.options_changed)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.seed.valueChanged.connect(self.options_changed)
        self.new_style = QPushButton("New style", self)
        self.new_style.clicked.connect(self._new_style)
        self.style_image = QPushButton("Style image...", self)
        self.style_image.clicked.connect(self.style_image_requested)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Direction:", self.direction)
        form.addRow("Seed:", self.seed)
        form.addRow("", self.new_style)
        form.addRow("", self.style_image)
        form.addRow(self.note)
        self.set_supported(())

    def set_supported(self, options: tuple[str, ...]) -> None:
        """Enable the controls of the options the loaded model takes (names from ``Family.infer``)."""
        self._supported = tuple(options)
        self.direction.setEnabled("direction" in options)
        self.seed.setEnabled("seed" in options)
        self.new_style.setEnabled("seed" in options)
        self.style_image.setEnabled("style_image" in options)
        shown = [name for name in ("direction", "seed", "style_image") if name in options]
        self.note.setText("This model takes: " + ", ".join(shown) if shown else
                          "This model has no style options.")

    def options(self) -> dict[str, Any]:
        """Keyword options for ``InferenceSession.translate``, only those the model takes."""
        out: dict[str, Any] = {}
        if "direction" in self._supported:
            out["direction"] = self.direction.currentData()
        if "seed" in self._supported:
            out["seed"] = self.seed.value()
        return out

    def _new_style(self) -> None:
        self.seed.setValue((self.seed.value() * 1103515245 + 12345) % 2**31)
