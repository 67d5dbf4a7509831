"""Small controls the latent editor's sections share: a float slider, a style-layer range, a seed box."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)

MAX_SEED = 2**31 - 1
STRENGTH_LIMIT = 5.0
STRENGTH_STEPS = 10  # slider units per unit of strength (0.1 resolution)

class StrengthSlider(QWidget):
    """A horizontal slider for a float in [minimum, maximum] (``steps`` positions per unit), value beside it."""

    value_changed = Signal(float)

    def __init__(self, name: str, minimum: float = -STRENGTH_LIMIT, maximum: float = STRENGTH_LIMIT,
                 steps: int = STRENGTH_STEPS, text: str = "{:+.1f}", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._steps, self._text = steps, text
        self.label = QLabel(name, self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(round(minimum * steps), round(maximum * steps))
        self.slider.setPageStep(steps)
        self.value_label = QLabel(self)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance(text.format(-9.99)) + 4)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        if name:
            row.addWidget(self.label)
        else:
            self.label.hide()
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._moved)
        self._show(self.slider.value())

    def value(self) -> float:
        return self.slider.value() / self._steps

    def set_value(self, value: float, emit: bool = True) -> None:
        self.slider.blockSignals(not emit)
        self.slider.setValue(round(value * self._steps))
        self.slider.blockSignals(False)
        self._show(self.slider.value())

    def _moved(self, raw: int) -> None:
        self._show(raw)
        self.value_changed.emit(raw / self._steps)

    def _show(self, raw: int) -> None:
        self.value_label.setText(self._text.format(raw / self._steps) if raw else self._text.format(0.0)
                                 .replace("+", ""))


class LayerRange(QWidget):
    """Two spin boxes choosing an inclusive layer range ``from``-``to``, and a menu of the StyleGAN style groups
    (coarse, middle, fine) that sets them; :meth:`half_open` gives the engine's range."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start = QSpinBox(self)
        self.end = QSpinBox(self)
        for box, tip in ((self.start, "first style layer"), (self.end, "last style layer (included)")):
            box.setToolTip(tip)
            box.valueChanged.connect(self._changed)
        self.group = QComboBox(self)
        self.group.setToolTip("Style groups by the resolution their layers draw at: coarse 4-8 px (pose, shape), "
                              "middle 16-32 px, fine 64 px and up (colours)")
        self.group.activated.connect(self._group_chosen)
        self.group.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.choices: list[tuple[int, int] | None] = []  # the menu's ranges, in its order (None: custom)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.start, 1)
        row.addWidget(QLabel("to", self))
        row.addWidget(self.end, 1)
        row.addWidget(self.group)

    def set_layers(self, count: int, start: int, end: int, groups: dict[str, tuple[int, int]] | None = None,
                   resolutions: list[int] | None = None) -> None:
        """``count`` layers (0..count-1); select ``start``..``end`` inclusive, without emitting.

        ``groups`` maps group names to half-open ranges (``engine.families.stylegan2.latent.layer_groups``); ``resolutions`` gives
        the pixels each layer draws at, shown in the menu.
        """
        self.group.blockSignals(True)
        self.group.clear()
        self.group.addItem("custom")
        self.choices = [None]
        for name, (first, stop) in {**(groups or {}), "all": (0, count)}.items():
            self.group.addItem(f"{name} ({_pixel_span(resolutions, first, stop)})" if resolutions else name)
            self.choices.append((first, stop))
        self.group.blockSignals(False)
        for box in (self.start, self.end):
            box.blockSignals(True)
            box.setRange(0, max(0, count - 1))
        self.start.setValue(start)
        self.end.setValue(end)
        for box in (self.start, self.end):
            box.blockSignals(False)
        self._show_group()

    def half_open(self) -> tuple[int, int]:
        return self.start.value(), self.end.value() + 1

    def _show_group(self) -> None:
        """Select the menu entry matching the spin boxes, or ``custom``."""
        layers = self.half_open()
        self.group.setCurrentIndex(self.choices.index(layers) if layers in self.choices else 0)

    def _group_chosen(self, index: int) -> None:
        layers = self.choices[index]
        if layers is None:
            return
        for box, value in ((self.start, layers[0]), (self.end, layers[1] - 1)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self.changed.emit()

    def _changed(self) -> None:
        if self.start.value() > self.end.value():  # keep from <= to, moving the other end along
            other = self.end if self.sender() is self.start else self.start
            other.blockSignals(True)
            other.setValue(self.sender().value())
            other.blockSignals(False)
        self._show_group()
        self.changed.emit()


def _pixel_span(resolutions: list[int], first: int, stop: int) -> str:
    """``4-8 px``: the resolutions that layers ``first``..``stop - 1`` draw at."""
    low, high = resolutions[first], resolutions[stop - 1]
    return f"{low} px" if low == high else f"{low}-{high} px"


def seed_box(parent: QWidget, value: int) -> QSpinBox:
    """A spin box for a seed (0 to :data:`MAX_SEED`) that reports a typed number once, not per digit."""
    box = QSpinBox(parent)
    box.setRange(0, MAX_SEED)
    box.setValue(value)
    box.setKeyboardTracking(False)  # typing 1234 renders once, not four times
    return box
