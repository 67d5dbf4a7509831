"""The runs under the runs folder (QSettings ``training/runs_folder``, default ``~/Ganvas/runs``).

A run is a folder with ``config.json``; its step is that of its newest checkpoint file, so an unfinished
run (step < total) survives app restarts and is offered with a Resume button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.run_log import CONFIG_FILE, read_run_config

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


class RunsList(QWidget):
    """Runs with their progress; ``resume_requested(path)`` and ``open_requested(path)``."""

    resume_requested = Signal(str)
    open_requested = Signal(str)

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.folder_label = QLabel()
        change = QPushButton("Change folder...")
        refresh = QPushButton("Refresh")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Run", "Family", "Step", "Status", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.itemDoubleClicked.connect(lambda item, _: self.open_requested.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(change)
        top.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(QLabel("Double-click a run to show its curves and samples."))
        change.clicked.connect(self.choose_folder)
        refresh.clicked.connect(self.refresh)
        self.refresh()

    @property
    def folder(self) -> Path:
        return runs_folder(self.settings)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.folder))
        if path:
            self.settings.setValue(SETTINGS_KEY, path)
            self.refresh()

    def refresh(self) -> None:
        self.folder_label.setText(f"Runs in {self.folder}")
        self.tree.clear()
        for run in list_runs(self.folder):
            status = "finished" if run.finished else "unfinished" if run.resumable else "no checkpoint"
            item = QTreeWidgetItem([run.path.name, run.family, f"{run.step} / {run.total}", status, ""])
            item.setData(0, Qt.ItemDataRole.UserRole, str(run.path))
            self.tree.addTopLevelItem(item)
            if run.resumable:
                button = QPushButton("Resume")
                button.clicked.connect(lambda _=False, p=str(run.path): self.resume_requested.emit(p))
                self.tree.setItemWidget(item, 4, button)
        for column in range(4):
            self.tree.resizeColumnToContents(column)
