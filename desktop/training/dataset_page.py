"""The Dataset page: check a folder (layout, counts, thumbnails, problems, fitting families), build
edges/sketch -> photo pairs from a folder of photos with a live preview of the Canny or XDoG parameters, and
turn colour label maps into index maps (:class:`~desktop.training.label_maps_tab.LabelMapsTab`).

Checks and builds run in a background thread (:class:`~desktop.workers.Worker`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.output_view import qimage_from_array
from desktop.training.config_form import KIND_NAMES
from desktop.training.label_maps_tab import LabelMapsTab
from desktop.training.run_page import ImageLabel
from desktop.workers import Worker, error_message
from engine.api import (
    CANNY_DEFAULTS,
    XDOG_DEFAULTS,
    DatasetReport,
    GanvasError,
    build_pairs,
    center_square,
    check_dataset,
    list_images,
    make_drawing,
    read_image,
)

THUMB = 96
PREVIEW_SIZE = 256
# name: (minimum, maximum, step, decimals) of each drawing parameter
PARAMS = {"low": (0, 1000, 10, 0), "high": (0, 1000, 10, 0), "sigma": (0.1, 10, 0.1, 2), "k": (1.05, 10, 0.1, 2),
          "p": (0, 200, 1, 1), "epsilon": (-1, 2, 0.05, 3), "phi": (0.1, 500, 1, 1)}


class _Progress(QObject):
    """Carries (done, total) from a worker thread to the GUI thread (queued signal)."""

    changed = Signal(int, int)


def folder_row(edit: QLineEdit, parent: QWidget, title: str) -> QHBoxLayout:
    browse = QPushButton("Browse...")

    def choose() -> None:
        path = QFileDialog.getExistingDirectory(parent, title, edit.text())
        if path:
            edit.setText(path)
            edit.editingFinished.emit()

    browse.clicked.connect(choose)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row


class DatasetPage(QTabWidget):
    """``dataset_checked(path, DatasetReport)`` fires after each check."""

    dataset_checked = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: DatasetReport | None = None
        self.palette = ""  # the palette of the model to start from: label maps in it are recognised too
        self._call: Worker | None = None
        self._progress = _Progress(self)
        self.addTab(self._check_tab(), "Check a dataset")
        self.addTab(self._build_tab(), "Build edges/sketch pairs")
        self.label_maps = LabelMapsTab()
        self.addTab(self.label_maps, "Label maps")

    # --- check ------------------------------------------------------------------------------------
    def _check_tab(self) -> QWidget:
        tab = QWidget()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("dataset folder (aligned A|B, A/ B/, trainA/ trainB/, labels/ images/, "
                                            "or any images)")
        self.folder_edit.editingFinished.connect(self.check)
        self.summary = QLabel("Choose a dataset folder.")
        self.summary.setWordWrap(True)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setFlow(QListView.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setIconSize(QSize(THUMB * 2, THUMB))
        self.thumbs.setFixedHeight(THUMB + 40)
        self.problems = QListWidget()
        self.check_progress = QProgressBar()
        self.check_progress.hide()
        layout = QVBoxLayout(tab)
        layout.addLayout(folder_row(self.folder_edit, self, "Dataset folder"))
        layout.addWidget(self.summary)
        layout.addWidget(self.thumbs)
        layout.addWidget(QLabel("Problems:"))
        layout.addWidget(self.problems, 1)
        layout.addWidget(self.check_progress)
        return tab

    def check(self, folder: str | None = None) -> None:
        if folder is not None:
            self.folder_edit.setText(folder)
        path = self.folder_edit.text().strip()
        if not path or self._call is not None:
            return
        self.summary.setText(f"Checking {path}...")
        self.check_progress.show()
        self._progress.changed.connect(self._on_check_progress)
        palette = self.palette
        self._call = Worker.call(lambda: check_dataset(path, progress=self._progress.changed.emit, palette=palette),
                                 "ganvas-dataset-check", self)
        self._call.returned.connect(self.show_report)
        self._call.errored.connect(self._on_failed)
        self._call.start()

    def _on_check_progress(self, done: int, total: int) -> None:
        self.check_progress.setRange(0, total)
        self.check_progress.setValue(done)

    def _end_call(self) -> None:
        self._call = None
        self.check_progress.hide()
        self._progress.changed.disconnect()

    def _on_failed(self, exc: BaseException) -> None:
        self._end_call()
        self.summary.setText(f"Error: {error_message(exc)}")
        self.build_button.setEnabled(True)

    def show_report(self, report: DatasetReport) -> None:
        self._end_call()
        self.report = report
        counts = ", ".join(f"{n}: {c}" for n, c in report.counts.items()) or "no images"
        fits = ", ".join(report.fits) or "none"
        sides = ", ".join(f"{side} = {KIND_NAMES.get(kind, kind)}" for side, kind in report.sides.items())
        if sides and report.palette:
            sides += f" ({report.palette} palette)"
        if report.direction:
            sides += f"; trains {report.direction} so you draw the {KIND_NAMES[report.input_kind()]}"
        self.summary.setText(f"<b>Layout:</b> {report.layout} &nbsp; <b>Files:</b> {counts} &nbsp; "
                             f"<b>Trains:</b> {fits}" + (f"<br><b>Sides:</b> {sides}" if sides else "")
                             + "".join(f"<br><i>{n}</i>" for n in report.notes))
        self.thumbs.clear()
        for path in report.preview:
            reader = QImageReader(path)
            size = reader.size()
            if size.isValid() and size.height() > 0:
                reader.setScaledSize(size.scaled(THUMB * 2, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
            image = reader.read()
            item = QListWidgetItem(QIcon(QPixmap.fromImage(image)) if not image.isNull() else QIcon(),
                                   Path(path).name)
            item.setToolTip(path)
            self.thumbs.addItem(item)
        self.problems.clear()
        for path, message in report.problems:
            self.problems.addItem(f"{Path(path).name}: {message}")
            self.problems.item(self.problems.count() - 1).setToolTip(path)
        if not report.problems:
            self.problems.addItem("No problems found.")
        self.dataset_checked.emit(report.folder, report)

    # --- build ------------------------------------------------------------------------------------
    def _build_tab(self) -> QWidget:
        tab = QWidget()
        self.src_edit, self.dst_edit = QLineEdit(), QLineEdit()
        self.src_edit.setPlaceholderText("folder of photos")
        self.dst_edit.setPlaceholderText("output folder (train/ and val/ are written inside)")
        self.src_edit.editingFinished.connect(self.load_sample)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(["edges", "sketch"])
        self.size_box = QSpinBox(minimum=32, maximum=2048, value=256, singleStep=32)
        self.param_boxes: dict[str, QDoubleSpinBox] = {}
        form = QFormLayout()
        form.addRow("Photos", folder_row(self.src_edit, self, "Folder of photos"))
        form.addRow("Drawing", self.kind_combo)
        defaults = {**CANNY_DEFAULTS, **XDOG_DEFAULTS}
        for name, (low, high, step, decimals) in PARAMS.items():
            box = QDoubleSpinBox(minimum=low, maximum=high, singleStep=step, decimals=decimals, value=defaults[name])
            box.valueChanged.connect(self.schedule_preview)
            self.param_boxes[name] = box
            form.addRow(name if name in CANNY_DEFAULTS else f"XDoG {name}", box)
        form.addRow("Size", self.size_box)
        form.addRow("Output", folder_row(self.dst_edit, self, "Output folder"))
        self.photo_view, self.drawing_view = ImageLabel("sample photo"), ImageLabel("preview")
        self.build_button = QPushButton("Build")
        self.build_progress = QProgressBar()
        self.build_result = QLabel("")
        self.build_result.setWordWrap(True)
        self.preview_timer = QTimer(self, singleShot=True, interval=40)
        self.preview_timer.timeout.connect(self.update_preview)
        self.kind_combo.currentTextChanged.connect(self._on_kind)
        self.build_button.clicked.connect(self.build)
        self.sample_photo: Any = None
        views = QHBoxLayout()
        views.addWidget(self.photo_view)
        views.addWidget(self.drawing_view)
        row = QHBoxLayout()
        row.addWidget(self.build_button)
        row.addWidget(self.build_progress, 1)
        layout = QHBoxLayout(tab)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(row)
        left.addWidget(self.build_result)
        left.addStretch(1)
        form_box = QWidget()
        form_box.setLayout(left)
        form_box.setMinimumWidth(420)
        layout.addWidget(form_box)
        layout.addLayout(views, 1)
        self._on_kind(self.kind_combo.currentText())
        return tab

    def _on_kind(self, kind: str) -> None:
        for name, box in self.param_boxes.items():
            box.setEnabled((name in CANNY_DEFAULTS) == (kind == "edges"))
        self.schedule_preview()

    def params(self) -> dict[str, float]:
        names = CANNY_DEFAULTS if self.kind_combo.currentText() == "edges" else XDOG_DEFAULTS
        return {name: self.param_boxes[name].value() for name in names}

    def load_sample(self, path: str | None = None) -> None:
        """Take the given photo (default: the first one in the photos folder) for the live preview."""
        try:
            if path is None:
                photos = list_images(self.src_edit.text().strip()) if self.src_edit.text().strip() else []
                if not photos:
                    return
                path = str(photos[0])
            self.sample_photo = center_square(read_image(path), PREVIEW_SIZE)
        except (GanvasError, OSError) as exc:
            self.build_result.setText(f"Cannot preview: {exc}")
            return
        self.photo_view.set_image(QPixmap.fromImage(qimage_from_array(self.sample_photo)))
        self.update_preview()

    def schedule_preview(self) -> None:
        self.preview_timer.start()

    def update_preview(self) -> None:
        if self.sample_photo is None:
            return
        try:
            drawing = make_drawing(self.sample_photo, self.kind_combo.currentText(), **self.params())
        except GanvasError as exc:
            self.drawing_view.setText(str(exc))
            return
        self.drawing_view.set_image(QPixmap.fromImage(qimage_from_array(drawing)))

    def build(self) -> None:
        src, dst = self.src_edit.text().strip(), self.dst_edit.text().strip()
        if not src or not dst or self._call is not None:
            self.build_result.setText("Choose a photos folder and an output folder.")
            return
        kind, size, params = self.kind_combo.currentText(), self.size_box.value(), self.params()
        self.build_button.setEnabled(False)
        self.build_result.setText("Building...")
        self._progress.changed.connect(self._on_build_progress)
        self._call = Worker.call(
            lambda: build_pairs(src, dst, kind, size, progress=self._progress.changed.emit, **params),
            "ganvas-build-pairs", self)
        self._call.returned.connect(self._on_built)
        self._call.errored.connect(self._on_failed)
        self._call.start()

    def _on_build_progress(self, done: int, total: int) -> None:
        self.build_progress.setRange(0, total)
        self.build_progress.setValue(done)

    def _on_built(self, report: Any) -> None:
        self._end_call()
        self.build_button.setEnabled(True)
        skipped = f", {report.skipped} unreadable photo(s) skipped" if report.skipped else ""
        self.build_result.setText(f"Wrote {report.train} training and {report.val} validation pairs{skipped}.")
        self.setCurrentIndex(0)
        self.check(self.dst_edit.text().strip())
