"""The runs under the runs folder (QSettings ``training/runs_folder``, default ``~/Ganvas/runs``).

A run is a folder with ``config.json``; its step is that of its newest checkpoint file, so an unfinished
run (step < total) survives app restarts and is offered with a Resume button. Each run shows its disk use and
can be deleted (after a question).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import CONFIG_FILE, disk_usage, read_run_config

SETTINGS_KEY = "training/runs_folder"
DEFAULT_RUNS = Path.home() / "Ganvas" / "runs"
STEP_FILE = re.compile(r"step_(\d+)\.safetensors$")


def runs_folder(settings: QSettings) -> Path:
    return Path(str(settings.value(SETTINGS_KEY, str(DEFAULT_RUNS))))


@dataclass(frozen=True)
class RunInfo:
    """One run folder: family, checkpointed step and total steps."""

    path: Path
    family: str
    step: int
    total: int

    @property
    def finished(self) -> bool:
        return self.step >= self.total

    @property
    def resumable(self) -> bool:
        return not self.finished and (self.path / "latest.safetensors").is_file()


def read_run(path: Path) -> RunInfo | None:
    config = read_run_config(path) or {}
    try:
        total = int(config["train_config"]["steps"])
    except (KeyError, TypeError, ValueError):
        return None
    steps = [int(m.group(1)) for f in (path / "checkpoints").glob("step_*.safetensors")
             if (m := STEP_FILE.search(f.name))]
    return RunInfo(path, str(config.get("family", "?")), max(steps, default=0), total)


def list_runs(folder: Path) -> list[RunInfo]:
    """Runs in ``folder``, newest first."""
    if not folder.is_dir():
        return []
    runs = [info for sub in folder.iterdir() if sub.is_dir() and (info := read_run(sub)) is not None]
    return sorted(runs, key=lambda r: (r.path / CONFIG_FILE).stat().st_mtime, reverse=True)


def format_bytes(size: int) -> str:
    """``1.2 GB``, ``35 MB``, ``12 kB`` (decimal units, as file managers show them)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


class RunsList(QWidget):
    """Runs with their progress and disk use; ``resume_requested(path)``, ``open_requested(path)``, and
    ``changed`` after a run was deleted or the folder changed. ``busy_run()`` names a run that must not be
    deleted (the one training)."""

    resume_requested = Signal(str)
    open_requested = Signal(str)
    changed = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None,
                 busy_run: Callable[[], Path | None] = lambda: None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.busy_run = busy_run
        self.folder_label = QLabel()
        change = QPushButton("Change folder...")
        refresh = QPushButton("Refresh")
        self.delete_button = QPushButton("Delete run...")
        self.delete_button.setToolTip("delete the selected run folder with its checkpoints and samples")
        self.delete_button.setEnabled(False)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Run", "Family", "Step", "Status", "Disk", ""])
        self.tree.itemSelectionChanged.connect(
            lambda: self.delete_button.setEnabled(bool(self.tree.selectedItems())))
        self.tree.setRootIsDecorated(False)
        self.tree.itemDoubleClicked.connect(lambda item, _: self.open_requested.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(change)
        top.addWidget(refresh)
        top.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(QLabel("Double-click a run to show its curves and samples."))
        change.clicked.connect(self.choose_folder)
        refresh.clicked.connect(self.refresh)
        self.delete_button.clicked.connect(self.delete_selected)
        self.refresh()

    @property
    def folder(self) -> Path:
        return runs_folder(self.settings)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.folder))
        if path:
            self.settings.setValue(SETTINGS_KEY, path)
            self.refresh()
            self.changed.emit()

    def confirm_delete(self, run: Path, size: str) -> bool:
        answer = QMessageBox.warning(self, "Delete run", f"Delete the run {run.name} ({size}) with all its "
                                     "checkpoints and samples? This cannot be undone.",
                                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                     QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self) -> bool:
        """Delete the selected run folder after asking; never the run that is training."""
        items = self.tree.selectedItems()
        if not items:
            return False
        run = Path(items[0].data(0, Qt.ItemDataRole.UserRole))
        busy = self.busy_run()
        if busy is not None and Path(busy).resolve() == run.resolve():
            QMessageBox.information(self, "Delete run", f"{run.name} is training; stop it first.")
            return False
        if not self.confirm_delete(run, items[0].text(4)):
            return False
        try:
            shutil.rmtree(run)
        except OSError as exc:
            QMessageBox.critical(self, "Delete run", f"{run}: cannot delete ({exc.strerror})")
        self.refresh()
        self.changed.emit()
        return not run.exists()

    def refresh(self) -> None:
        self.folder_label.setText(f"Runs in {self.folder}")
        self.tree.clear()
        for run in list_runs(self.folder):
            status = "finished" if run.finished else "unfinished" if run.resumable else "no checkpoint"
            item = QTreeWidgetItem([run.path.name, run.family, f"{run.step} / {run.total}", status,
                                    format_bytes(disk_usage(run.path)), ""])
            item.setData(0, Qt.ItemDataRole.UserRole, str(run.path))
            self.tree.addTopLevelItem(item)
            if run.resumable:
                button = QPushButton("Resume")
                button.clicked.connect(lambda _=False, p=str(run.path): self.resume_requested.emit(p))
                self.tree.setItemWidget(item, 5, button)
        for column in range(5):
            self.tree.resizeColumnToContents(column)
