"""The latent editor's Projection section: find the latent of a photo, optionally with the LPIPS loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.files import IMAGE_FILTER
from desktop.latent.model import LatentModel
from desktop.workers import Worker, error_message
from engine import api

DEFAULT_PROJECTION_STEPS = 200


class ProjectionSection(QGroupBox):
    """Project a photo off the UI thread (cancellable, with progress); the result becomes the latent edited.

    Signals:
        starting(): a projection is about to start.
    """

    starting = Signal()

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Projection", parent)
        self.model = model
        self.projection: Worker | None = None
        self.last_projection_event: Any = None
        self.project_button = QPushButton("Project a photo...", self)
        self.project_button.setToolTip("Find the latent of a photo; the result becomes the latent you edit")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.steps_box = QSpinBox(self)
        self.steps_box.setRange(1, 5000)
        self.steps_box.setValue(DEFAULT_PROJECTION_STEPS)
        self.steps_box.setSuffix(" steps")
        self.space_combo = QComboBox(self)
        self.space_combo.addItem("W (one vector)", "w")
        self.space_combo.addItem("W+ (per layer)", "w+")
        self.space_combo.setToolTip("W+ fits photos more closely but edits less cleanly")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")  # idle: an empty bar, not "0 / 1"
        options = QHBoxLayout()
        options.addWidget(self.steps_box, 1)
        options.addWidget(self.space_combo, 1)
        self.lpips_check = QCheckBox("LPIPS", self)
        self.lpips_check.setEnabled(False)
        self.lpips_check.setToolTip("Add the LPIPS perceptual distance to the loss (needs VGG16 weights)")
        self.lpips_button = QPushButton("VGG16 weights...", self)
        self.lpips_button.setToolTip("A VGG16 state dict such as torchvision's vgg16-397923af.pth; Ganvas "
                                     "downloads nothing")
        self.lpips_backbone: str | None = None
        lpips_row = QHBoxLayout()
        lpips_row.addWidget(self.lpips_check)
        lpips_row.addWidget(self.lpips_button, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.project_button, 1)
        buttons.addWidget(self.cancel_button)
        form = QFormLayout(self)
        form.addRow(options)
        form.addRow(lpips_row)
        form.addRow(buttons)
        form.addRow(self.progress)
        self.project_button.clicked.connect(self.project_photo)
        self.cancel_button.clicked.connect(self.cancel_projection)
        self.lpips_button.clicked.connect(self.choose_lpips_weights)

    def is_busy(self) -> bool:
        return self.projection is not None

    def choose_lpips_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "VGG16 weights for LPIPS", self.model.start_folder(),
                                              "PyTorch weights (*.pth *.pt *.safetensors);;All files (*)")
        if path:
            self.set_lpips_weights(path)

    def set_lpips_weights(self, path: str | None) -> None:
        """Use this VGG16 file for LPIPS in the next projections (None: no LPIPS); it is read when one starts."""
        self.lpips_backbone = path
        self.lpips_check.setEnabled(path is not None)
        self.lpips_check.setChecked(path is not None)
        self.lpips_button.setText(Path(path).name if path else "VGG16 weights...")

    def project_photo(self) -> None:
        """Ask for a photo and project it."""
        if self.model.session is None or self.projection is not None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Project a photo", self.model.start_folder(), IMAGE_FILTER)
        if not path:
            return
        try:
            image = api.read_image(path)
        except Exception as exc:  # a GanvasError for unreadable images; anything else is shown the same way
            QMessageBox.critical(self, "Cannot open the photo", error_message(exc))
            return
        self.start_projection(image, Path(path).name)

    def start_projection(self, image: np.ndarray, name: str = "photo") -> Worker | None:
        """Project ``image`` (RGB uint8) off the UI thread with the chosen steps and space."""
        if self.model.session is None or self.projection is not None:
            return None
        session, steps, space = self.model.session, self.steps_box.value(), self.space_combo.currentData()
        backbone = self.lpips_backbone if self.lpips_check.isChecked() else None
        self.starting.emit()

        def run(should_stop: Callable[[], bool]) -> Any:
            # The weights load in the job's thread; a bad file fails the job with its name in the message.
            perceptual = api.load_lpips(backbone) if backbone else None
            return session.project(image, steps=steps, space=space, should_stop=should_stop, perceptual=perceptual)

        job = Worker.generator(run, "ganvas-latent-projection", self)
        job.setProperty("photo", name)
        job.yielded.connect(self._on_progress)
        job.returned.connect(self._on_finished)
        job.errored.connect(self._on_failed)
        self.projection = job
        self.last_projection_event = None
        self.progress.setRange(0, steps)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.project_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.model.message.emit(f"Projecting {name}...")
        self.model.busy_changed.emit()
        return job.start()

    def cancel_projection(self) -> None:
        """Ask the projection to stop at its next step; its result is discarded."""
        if self.projection is not None:
            self.projection.stop()
            self.cancel_button.setEnabled(False)

    def _on_progress(self, event: Any) -> None:
        if self.sender() is not self.projection:
            return
        self.last_projection_event = event
        self.progress.setValue(event.step)
        if event.kind == "step":
            self.progress.setFormat(f"%v / %m   loss {event.loss:.3f}")

    def _on_finished(self, event: Any) -> None:
        job = self.sender()
        if job is not self.projection:
            return
        self._end()
        if event is None or event.latent is None:
            return
        name = job.property("photo")
        if job.should_stop():
            self.model.message.emit(f"Projection of {name} cancelled at step {event.step} of {event.total}")
            return
        self.model.message.emit(f"Projected {name} in {event.step} steps (loss {event.loss:.3f})")
        self.model.start_from(event.latent, f"projected {name}")

    def _on_failed(self, exc: BaseException) -> None:
        if self.sender() is not self.projection:
            return
        self._end()
        QMessageBox.critical(self, "Projection failed", error_message(exc))

    def _end(self) -> None:
        self.projection = None
        self.project_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("%v / %m" if self.progress.value() else "")
        self.model.busy_changed.emit()
