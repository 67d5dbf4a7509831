"""The latent editor's Style mixing section: take some style layers from a second seed."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QWidget

from desktop.latent.controls import LayerRange, seed_box
from desktop.latent.model import LatentModel


class MixingSection(QGroupBox):
    """A checkable group: when on, the chosen style layers come from a second seed.

    Signals:
        changed(): the user changed a control (render again).
    """

    changed = Signal()

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Style mixing", parent)
        self.model = model
        self.setCheckable(True)
        self.setChecked(False)
        self.setToolTip("Take the chosen style layers from a second seed")
        self.seed_box = seed_box(self, 1)
        self.layers = LayerRange(self)
        form = QFormLayout(self)
        form.addRow("Second seed:", self.seed_box)
        form.addRow("Its layers:", self.layers)
        self.toggled.connect(self._control_changed)
        self.seed_box.valueChanged.connect(self._control_changed)
        self.layers.changed.connect(self._control_changed)
        model.session_changed.connect(self._on_session)
        model.latent_loaded.connect(self._turn_off_quietly)

    def mix_seed(self) -> int | None:
        """The second seed, or None while mixing is off."""
        return self.seed_box.value() if self.isChecked() else None

    def _on_session(self, session: Any) -> None:
        if session is None:
            return
        num_ws, groups, resolutions = self.model.style_layers()
        self.layers.set_layers(num_ws, num_ws // 2, num_ws - 1, groups, resolutions)

    def _control_changed(self, *_: Any) -> None:
        self.changed.emit()

    def _turn_off_quietly(self) -> None:
        self.blockSignals(True)
        self.setChecked(False)
        self.blockSignals(False)
