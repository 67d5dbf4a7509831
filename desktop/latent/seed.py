"""The latent editor's Latent section: what the edits start from, the seed, and truncation."""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from desktop.latent.controls import MAX_SEED, StrengthSlider, seed_box
from desktop.latent.model import LatentModel

PSI_MAX = 1.5
PSI_STEPS = 100
DEFAULT_PSI = 0.7


class SeedSection(QGroupBox):
    """The seed of the latent z (changing it starts from that seed again), truncation psi and its layer cutoff.

    Signals:
        changed(): the user changed a control (render again).
    """

    changed = Signal()

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Latent", parent)
        self.model = model
        self.base_label = QLabel(self)
        self.base_label.setWordWrap(True)
        self.seed_box = seed_box(self, 0)
        self.seed_box.setToolTip("The seed of the latent z; changing it starts from that seed again")
        self.random_button = QPushButton("Random", self)
        self.random_button.setToolTip("A random seed")
        self.psi_slider = StrengthSlider("", 0.0, PSI_MAX, PSI_STEPS, "{:.2f}", self)
        self.psi_slider.slider.setPageStep(10)
        self.psi_slider.set_value(DEFAULT_PSI, emit=False)
        self.psi_slider.setToolTip("Truncation psi: 0 is the average face of the model, 1 the plain sample, "
                                   "above 1 exaggerates it")
        self.cutoff_box = QSpinBox(self)
        self.cutoff_box.setToolTip("Truncate only style layers below this one (the last value: all layers)")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_box, 1)
        seed_row.addWidget(self.random_button)
        form = QFormLayout(self)
        form.addRow(self.base_label)
        form.addRow("Seed:", seed_row)
        form.addRow("Truncation:", self.psi_slider)
        form.addRow("Truncate layers <", self.cutoff_box)
        self.seed_box.valueChanged.connect(self._seed_changed)
        self.random_button.clicked.connect(self.random_seed)
        self.psi_slider.value_changed.connect(self._control_changed)
        self.cutoff_box.valueChanged.connect(self._control_changed)
        model.session_changed.connect(self._on_session)
        model.base_changed.connect(self._show_base)
        model.latent_loaded.connect(self._show_latent_as_it_is)

    def seed(self) -> int:
        return self.seed_box.value()

    def psi(self) -> float:
        return self.psi_slider.value()

    def cutoff(self) -> int | None:
        """The first style layer left untruncated (None: truncate them all)."""
        cutoff = self.cutoff_box.value()
        num_ws = self.model.session.num_ws if self.model.session is not None else cutoff
        return None if cutoff >= num_ws else cutoff

    def random_seed(self) -> None:
        self.seed_box.setValue(random.randint(0, MAX_SEED))

    def _on_session(self, session: Any) -> None:
        if session is None:
            self.base_label.setText("Load a StyleGAN2 model to edit its latents.")
            return
        num_ws = session.num_ws
        self.cutoff_box.blockSignals(True)
        self.cutoff_box.setRange(1, num_ws)
        self.cutoff_box.setValue(num_ws)
        self.cutoff_box.blockSignals(False)
        self._show_base()

    def _seed_changed(self) -> None:
        self.model.start_from_seed()  # a new seed starts from that seed
        self.changed.emit()

    def _control_changed(self, *_: Any) -> None:
        self.changed.emit()

    def _show_base(self) -> None:
        if self.model.base is None:
            self.base_label.setText("Starting from the seed below.")
        else:
            self.base_label.setText(f"Starting from {self.model.base_name}; change the seed to leave it.")

    def _show_latent_as_it_is(self) -> None:
        self.psi_slider.set_value(1.0, emit=False)
