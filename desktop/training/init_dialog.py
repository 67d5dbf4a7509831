""""Start from a model...": choose the model a new run starts from (a bundled model, one of the user's runs or
models, or any checkpoint file). The dialog only lists and asks; the training window checks the choice with
:func:`engine.train.finetune.inspect_source` and locks the network settings the model fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.model_panel import user_checkpoints, user_source
from engine.api import checkpoint_header

BUNDLED_GROUP = "Bundled models"
USER_GROUP = "Your runs and models"


def bundled_models() -> list[Any]:
    """The bundled models as the engine reads them (title, family, path, or the error of a damaged file)."""
    from engine.api import list_bundled

    return list_bundled()


class InitSourceDialog(QDialog):
    """A tree of bundled models (by card title) and the user's runs and models; ``chosen(path)`` on OK."""

    chosen = Signal(str)

    def __init__(self, runs_folder: str | Path, models_folder: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Start from a model")
        self.resize(560, 420)
        intro = QLabel("The new run starts from the chosen model's networks (its generator, and its discriminator "
                       "when it has one) and keeps their settings; steps, learning rate, batch size and data are "
                       "this run's. A model that already draws something close has less to learn from a small set.")
        intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Family"])
        self.tree.setColumnWidth(0, 380)
        self.file_button = QPushButton("Checkpoint file...")
        self.file_button.setToolTip("a Ganvas checkpoint (.safetensors) from anywhere")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.file_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self._accept_selected)
        self.buttons.rejected.connect(self.reject)
        self.file_button.clicked.connect(self.choose_file)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemActivated.connect(lambda *_: self._accept_selected())
        self._fill(Path(runs_folder), Path(models_folder))
        self._selection_changed()

    def _fill(self, runs_folder: Path, models_folder: Path) -> None:
        group = self._group(BUNDLED_GROUP)
        for model in bundled_models():
            if model.error:
                item = QTreeWidgetItem(group, [f"{model.name} (damaged)", ""])
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setToolTip(0, model.error)
            else:
                self._item(group, model.title, model.family, str(model.path))
        if not group.childCount():
            QTreeWidgetItem(group, ["none shipped with this installation"]).setFlags(Qt.ItemFlag.NoItemFlags)
        group = self._group(USER_GROUP)
        for path in user_checkpoints(models_folder, runs_folder):
            header = checkpoint_header(path) or {}
            self._item(group, user_source(path).label, str(header.get("family", "?")), str(path))
        if not group.childCount():
            QTreeWidgetItem(group, ["none yet: train one, or choose a checkpoint file"]).setFlags(
                Qt.ItemFlag.NoItemFlags)

    def _group(self, title: str) -> QTreeWidgetItem:
        group = QTreeWidgetItem(self.tree, [title])
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        group.setExpanded(True)
        return group

    def _item(self, group: QTreeWidgetItem, label: str, family: str, path: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(group, [label, family])
        item.setData(0, Qt.ItemDataRole.UserRole, path)
        item.setToolTip(0, path)
        return item

    def items(self) -> list[QTreeWidgetItem]:
        """Every choosable entry, in display order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            out += [group.child(j) for j in range(group.childCount())]
        return [item for item in out if item.data(0, Qt.ItemDataRole.UserRole)]

    def selected_path(self) -> str:
        items = self.tree.selectedItems()
        return str(items[0].data(0, Qt.ItemDataRole.UserRole) or "") if items else ""

    def _selection_changed(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.selected_path()))

    def _accept_selected(self) -> None:
        path = self.selected_path()
        if path:
            self.accept()
            self.chosen.emit(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from a checkpoint", "",
                                              "Ganvas checkpoints (*.safetensors);;All files (*)")
        if path:
            self.accept()
            self.chosen.emit(path)
