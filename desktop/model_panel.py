"""The Model dock: bundled models, the user's models and runs, any checkpoint, and an untrained network
per family, plus the loaded model's card and how the canvas draws for it.

The panel only lists and asks: it emits :attr:`ModelPanel.model_requested` with a :class:`ModelSource`;
the main window loads it off the UI thread and calls :meth:`ModelPanel.show_card` when done.
"""

from __future__ import annotations

import importlib.resources
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import checkpoint_header

CHECKPOINT_SUFFIX = ".safetensors"
UNTRAINED_SIZE = (256, 256)
BUNDLED_GROUP = "Bundled models"
UNTRAINED_GROUP = "Untrained (for testing controls)"
DRAW_MODES = [("label map (palette)", "label"), ("edges", "edges"), ("sketch", "sketch"),
              ("photo (colour brush)", "photo")]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a checkpoint file or an untrained network of a family."""

    label: str
    path: str | None = None
    family: str | None = None  # set for untrained networks
    config: dict[str, Any] = field(default_factory=dict)  # untrained: empty for the family's small network

    @property
    def untrained(self) -> bool:
        return self.path is None

    def key(self) -> str:
        """A string that identifies the source in settings (recent models, last model)."""
        return f"untrained:{self.family}" if self.untrained else f"file:{self.path}"

    @classmethod
    def from_key(cls, key: str) -> ModelSource | None:
        kind, _, value = key.partition(":")
        if kind == "untrained" and value:
            return untrained_source(value)
        if kind == "file" and value:
            return cls(checkpoint_label(value), path=value)
        return None


def untrained_source(family: str) -> ModelSource:
    return ModelSource(f"Untrained {family} (random weights)", family=family)


def _untrained_tip(source: ModelSource) -> str:
    return f"a small untrained {source.family} network (the family's untrained_config), quick on a CPU"


def bundled_checkpoints() -> list[Path]:
    """``assets/models/*.safetensors`` shipped with the package (none when the folder is absent)."""
    try:
        folder = importlib.resources.files("assets") / "models"
        if not folder.is_dir():
            return []
        return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(CHECKPOINT_SUFFIX))
    except (ModuleNotFoundError, OSError):
        return []


def sample_drawing(name: str) -> Path:
    """A drawing shipped in ``assets/samples`` (bundled models open on one, named in their card)."""
    return Path(str(importlib.resources.files("assets"))) / "samples" / name


def user_checkpoints(*folders: str | Path) -> list[Path]:
    """Checkpoints directly in each folder plus the ``latest`` checkpoint of each run folder inside it
    (the models folder and the runs folder alike), newest first."""
    found: dict[Path, None] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        if folder.is_dir():
            for path in (*folder.glob("*" + CHECKPOINT_SUFFIX), *folder.glob("*/latest" + CHECKPOINT_SUFFIX)):
                if path.is_file():
                    found[path.resolve()] = None
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def run_of(path: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to (its ``latest`` or a ``checkpoints/step_N`` file), else None."""
    path = Path(path)
    if path.name == "latest" + CHECKPOINT_SUFFIX:
        return path.parent
    if path.parent.name == "checkpoints" and path.stem.startswith("step_"):
        return path.parent.parent
    return None


def checkpoint_label(path: str | Path) -> str:
    """A checkpoint's name for people: its run's name (with the step for earlier step files), else its stem."""
    path = Path(path)
    run = run_of(path)
    if run is None:
        return path.stem
    if path.stem.startswith("step_"):
        return f"{run.name} (step {int(path.stem[5:] or 0)})"
    return run.name


def user_source(path: Path) -> ModelSource:
    """A listed checkpoint: named after its run, with its step and date (read from the header only)."""
    meta = checkpoint_header(path) or {}
    step = meta.get("step")
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    detail = f"step {step}, {date}" if step is not None else date
    return ModelSource(f"{checkpoint_label(path)}  ({detail})", str(path))


def checkpoint_source(path: str | Path) -> ModelSource:
    """The source a chosen file stands for: a reference run's ``train_opt.txt`` means its folder, a ``.pth`` in a
    reference run folder is labelled after the run (the engine imports the whole folder either way)."""
    path = Path(path)
    if path.name == "train_opt.txt":
        return ModelSource(f"{path.parent.name} (reference run)", str(path.parent))
    if path.suffix.lower() == ".pth" and (path.parent / "train_opt.txt").is_file():
        return ModelSource(f"{path.parent.name} (reference run)", str(path))
    return ModelSource(path.name, str(path))


class ModelPanel(QWidget):
    """Choose a model; see its card; choose how the canvas draws for image models."""

    model_requested = Signal(object)  # ModelSource
    draw_mode_changed = Signal(str)  # label | edges | sketch | photo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models_folder = Path("~/Ganvas/models")
        self._runs_folder = Path("~/Ganvas/runs")
        self._families: list[tuple[str, str]] = []  # (name, input_kind)
        self._bundled: list[Any] | None = None  # engine.core.bundled.BundledModel, once the engine has read them
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.itemActivated.connect(self._item_activated)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.load_button = QPushButton("Load", self)
        self.load_button.setToolTip("Load the selected model (or double-click it)")
        self.load_button.clicked.connect(self._load_selected)
        self.open_button = QPushButton("Open checkpoint...", self)
        self.open_button.clicked.connect(self.open_checkpoint)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        self.mode_combo = QComboBox(self)
        for text, mode in DRAW_MODES:
            self.mode_combo.addItem(text, mode)
        self.mode_combo.setCurrentIndex(1)
        self.mode_combo.currentIndexChanged.connect(self._mode_chosen)
        self.card = QPlainTextEdit(self)
        self.card.setReadOnly(True)
        self.card.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.card.setPlaceholderText("No model loaded")
        self.card.setMaximumHeight(150)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self._build_layout()
        self.set_engine_ready(False)

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.load_button, self.open_button, self.refresh_button):
            buttons.addWidget(button)
        form = QFormLayout()
        form.addRow("Draw as:", self.mode_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.card)

    # --- state ------------------------------------------------------------------------------------
    def set_engine_ready(self, ready: bool) -> None:
        """Before the engine is imported nothing can load; the list still shows files."""
        for widget in (self.tree, self.load_button, self.open_button):
            widget.setEnabled(ready)
        if not ready:
            self.status.setText("Loading engine...")

    def set_busy(self, text: str | None) -> None:
        """Show what is loading (or clear it) and block new requests meanwhile."""
        self.status.setText(text or "")
        self.load_button.setEnabled(text is None)
        self.open_button.setEnabled(text is None)

    def set_families(self, families: list[tuple[str, str]]) -> None:
        """``[(name, input_kind), ...]``; latent families (StyleGAN2) open the latent editor instead of the canvas."""
        self._families = list(families)
        self.refresh()

    def set_bundled(self, models: list[Any]) -> None:
        """The bundled models as the engine read them (name, title, path, error); damaged ones are listed
        greyed out with their error, and named in the status line."""
        self._bundled = list(models)
        self.refresh()
        damaged = [m for m in self._bundled if m.error]
        if damaged:
            self.status.setText("Damaged bundled model(s): " + "; ".join(m.error for m in damaged))

    def set_models_folder(self, folder: str | Path) -> None:
        self._models_folder = Path(folder)
        self.refresh()

    def set_runs_folder(self, folder: str | Path) -> None:
        """Where training writes runs: their latest checkpoints are listed under "Your models" too."""
        self._runs_folder = Path(folder)
        self.refresh()

    def show_card(self, lines: list[str]) -> None:
        self.card.setPlainText("\n".join(lines))

    @property
    def draw_mode(self) -> str:
        return self.mode_combo.currentData()

    def set_draw_mode(self, mode: str, locked: bool = False) -> None:
        """Select ``mode`` without emitting; ``locked`` when the model dictates it (label models)."""
        index = self.mode_combo.findData(mode)
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(max(0, index))
        self.mode_combo.blockSignals(False)
        self.mode_combo.setEnabled(not locked)
        self.mode_combo.setToolTip("This model reads label maps" if locked else
                                   "How the canvas draws for this image model")

    # --- listing ----------------------------------------------------------------------------------
    def sources(self) -> list[ModelSource]:
        """Every listed source, in display order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            out += [group.child(j).data(0, Qt.ItemDataRole.UserRole) for j in range(group.childCount())]
        return [source for source in out if source is not None]  # placeholders carry no source

    def refresh(self) -> None:
        self.tree.clear()
        self._add_bundled()
        user = [user_source(p) for p in user_checkpoints(self._models_folder, self._runs_folder)]
        self._add_group("Your models", user,
                        empty="none yet: train one, or put checkpoints or run folders in the models folder")
        self._add_group(UNTRAINED_GROUP,
                        [untrained_source(name) for name, _ in self._families],
                        empty="" if self._families else "waiting for the engine...")

    def _add_bundled(self) -> None:
        """Bundled models by their card titles (file names until the engine has read the cards)."""
        if self._bundled is None:
            self._add_group(BUNDLED_GROUP, [ModelSource(checkpoint_label(p), str(p)) for p in bundled_checkpoints()])
            return
        group = self._add_group(BUNDLED_GROUP, [ModelSource(m.title, str(m.path)) for m in self._bundled
                                                if not m.error])
        for model in (m for m in self._bundled if m.error):
            item = QTreeWidgetItem(group if group is not None else self.tree, [f"{model.name} (damaged)"])
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setToolTip(0, model.error)

    def _add_group(self, title: str, sources: list[ModelSource], empty: str = "") -> QTreeWidgetItem | None:
        if not sources and not empty:
            return None
        group = QTreeWidgetItem(self.tree, [title])
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        group.setToolTip(0, f"{self._models_folder} and the runs in {self._runs_folder}" if title == "Your models"
                         else title)
        for source in sources:
            item = QTreeWidgetItem(group, [source.label])
            item.setData(0, Qt.ItemDataRole.UserRole, source)
            # the whole name (a run's step and date are cut off in a narrow dock) above where it comes from
            item.setToolTip(0, f"{source.label}\n{source.path}" if source.path else _untrained_tip(source))
        if not sources:
            item = QTreeWidgetItem(group, [empty])
            item.setFlags(Qt.ItemFlag.NoItemFlags)
        group.setExpanded(True)
        return group

    # --- requests ---------------------------------------------------------------------------------
    def open_checkpoint(self) -> None:
        """Ask for a Ganvas checkpoint, or a pix2pix/CycleGAN reference run: one of its ``.pth`` files or its
        ``train_opt.txt`` (the whole run folder is imported by the engine as it loads)."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open checkpoint", str(self._models_folder.expanduser()),
            "Checkpoints and reference runs (*.safetensors *.pth train_opt.txt);;Ganvas checkpoints (*.safetensors);;"
            "Reference run folders (train_opt.txt);;PyTorch state dicts (*.pth);;All files (*)")
        if path:
            self.model_requested.emit(checkpoint_source(path))

    def _selected_source(self) -> ModelSource | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _selection_changed(self) -> None:
        self.load_button.setEnabled(self._selected_source() is not None)

    def _load_selected(self) -> None:
        source = self._selected_source()
        if source is not None:
            self.model_requested.emit(source)

    def _item_activated(self, item: QTreeWidgetItem) -> None:
        source = item.data(0, Qt.ItemDataRole.UserRole)
        if source is not None:
            self.model_requested.emit(source)

    def _mode_chosen(self) -> None:
        self.draw_mode_changed.emit(self.draw_mode)
