"""The non-modal training window: Dataset, Configure, Run and Runs pages.

"Start from a model..." on the Configure page starts a new run from a bundled model's or a run's networks.
Training runs in a child process (:class:`~desktop.training.run_controller.RunController`); this window
only shows it, so a crash or out-of-memory kill is reported while the app stays up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.model_panel import ModelSource
from desktop.preferences import Preferences
from desktop.training.config_form import ConfigForm
from desktop.training.dataset_page import DatasetPage
from desktop.training.init_dialog import InitSourceDialog
from desktop.training.run_controller import RunController
from desktop.training.run_page import RunPage
from desktop.training.runs_list import RunsList, runs_folder
from engine import api
from engine.api import GanvasError


def gpu_count() -> int:
    return api.cuda_device_count()


def cuda_available() -> bool:
    return api.cuda_available()


class TrainingWindow(QMainWindow):
    """Pick a dataset, configure, start and watch a run; ``load_model`` loads a checkpoint into the canvas.

    ``runs_changed`` fires when a run saved or ended, was deleted, or the runs folder changed.
    """

    runs_changed = Signal()

    def __init__(self, settings: QSettings, load_model: Callable[[ModelSource], None] | None = None,
                 parent: QWidget | None = None, has_cuda: bool | None = None, gpus: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Ganvas - Training")
        self.settings = settings
        self.controller = RunController(self)
        self.dataset_page = DatasetPage()
        self.form = ConfigForm(api.family_names(), cuda_available() if has_cuda is None else has_cuda,
                               gpu_count=gpu_count() if gpus is None else gpus)
        self.run_page = RunPage(self.controller, load_model)
        self.runs = RunsList(settings, busy_run=lambda: self.controller.run_dir if self.controller.running else None)
        self.start_button = QPushButton("Start training")
        self.init_dialog: InitSourceDialog | None = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self.dataset_page, "1. Dataset")
        self.tabs.addTab(self._configure_page(), "2. Configure")
        self.tabs.addTab(self.run_page, "3. Run")
        self.tabs.addTab(self.runs, "Runs")
        self.setCentralWidget(self.tabs)
        self.dataset_page.dataset_checked.connect(self._on_dataset)
        self.form.changed.connect(self._update_start)
        self.start_button.clicked.connect(self.start)
        self.form.init_button.clicked.connect(self.choose_init)
        self.form.clear_init_button.clicked.connect(self.clear_init)
        self.runs.resume_requested.connect(self.resume)
        self.runs.open_requested.connect(self.open_run)
        self.runs.changed.connect(self.runs_changed)
        self.controller.state_changed.connect(self._on_state)
        self.controller.event.connect(self._on_event)
        self.resize(1100, 760)
        self._update_start()

    def _configure_page(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.start_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.form, 1)
        layout.addLayout(row)
        return page

    def _on_dataset(self, folder: str, report: Any) -> None:
        self.form.set_data_path(folder if report.layout != "none" else "")
        training_images = [n for part, n in report.counts.items() if part not in ("val", "test")]
        if training_images:
            self.form.set_dataset_size(max(training_images))
        if report.fits and self.form.family_name not in report.fits and self.form.init is None:
            self.form.set_family(report.fits[0])  # a model to start from keeps its family (the form says why)
        self.form.set_dataset_report(report)

    def _update_start(self) -> None:
        ok = not self.controller.running and bool(self.form.data_path) and not self.form.error_label.text()
        self.start_button.setEnabled(ok)

    def _on_state(self, state: str) -> None:
        self._update_start()
        if state in ("paused", "stopped", "done", "failed"):
            self.runs.refresh()
            self.runs_changed.emit()

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "checkpoint":
            self.runs_changed.emit()

    def new_run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return runs_folder(self.settings) / f"{self.form.family_name}-{stamp}"

    def choose_init(self) -> None:
        """Open "Start from a model..." (bundled models, the user's runs and models, a checkpoint file)."""
        self.init_dialog = InitSourceDialog(runs_folder(self.settings), Preferences(self.settings).models_folder,
                                            parent=self)
        self.init_dialog.chosen.connect(self.use_init)
        self.init_dialog.open()

    def use_init(self, source: str) -> bool:
        """Start the next run from ``source`` (file, run folder or bundled name) when it can start one; a damaged
        file or one that is no Ganvas model is refused with the reason."""
        try:
            info = api.inspect_init_source(source)
        except (GanvasError, OSError) as exc:
            QMessageBox.warning(self, "Cannot start from this model", str(exc))
            return False
        self.form.set_init(info)
        self._check_data_in(str(info.model_config.get("palette") or ""))
        self.tabs.setCurrentIndex(1)
        return True

    def clear_init(self) -> None:
        self.form.clear_init()
        self._check_data_in("")

    def _check_data_in(self, palette: str) -> None:
        """Check the dataset again when the model's palette changes what its label maps read as."""
        if palette != self.dataset_page.palette:
            self.dataset_page.palette = palette
            if self.dataset_page.report is not None:
                self.dataset_page.check()

    def start(self) -> None:
        try:
            spec = self.form.spec()
        except (GanvasError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot start", str(exc))
            return
        run_dir = self.new_run_dir()
        self.run_page.show_run(run_dir)
        self.controller.start(spec, run_dir, nproc=self.form.nproc())
        self.tabs.setCurrentWidget(self.run_page)

    def open_run(self, path: str) -> None:
        if not self.controller.running:
            self.run_page.show_run(path)
        self.tabs.setCurrentWidget(self.run_page)

    def resume(self, path: str) -> None:
        if self.controller.running:
            QMessageBox.information(self, "Training", "A run is already training; pause it first.")
            return
        self.run_page.show_run(path)
        self.controller.resume(path, nproc=self.form.nproc())
        self.tabs.setCurrentWidget(self.run_page)
