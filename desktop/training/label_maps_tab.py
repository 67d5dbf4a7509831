"""The "Label maps" builder tab: find or load a palette for a folder of colour-coded label maps, edit its
classes, preview a map snapped to it, and convert the folder to class-index PNGs.

Extraction and conversion run in a background thread (:class:`~desktop.workers.Worker`);
``engine.data.labels`` (which imports torch) is imported on first use, not when the window opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.output_view import qimage_from_array
from desktop.training.run_page import ImageLabel
from desktop.workers import Worker, error_message
from engine import api
from engine.api import ConfigError, GanvasError, Palette, PaletteClass, list_images, list_palettes, read_image

PREVIEW_MAX = 512  # longest side of the preview sample, so snapping on each edit stays instant
HALVES = {"whole image": None, "left half": "left", "right half": "right"}
SPLIT_NAMES = {"train", "val", "test", "labels", "label", "masks"}  # folder names that say little about the data
COLUMNS = ("id", "name", "colour", "background")


def _take_half(image: np.ndarray, half: str | None) -> np.ndarray:
    if half is None:
        return image
    width = image.shape[1] // 2
    return image[:, :width] if half == "left" else image[:, width: 2 * width]


def _swatch_style(color: tuple[int, int, int]) -> str:
    r, g, b = color
    text = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 128 else "#fff"
    return f"background-color: rgb({r}, {g}, {b}); color: {text}; border: 1px solid #666; padding: 2px 8px"


class LabelMapsTab(QWidget):
    """``finished(message)`` fires when an extraction or conversion ends (successfully or not)."""

    finished = Signal(str)
    palette_changed = Signal(object)  # the valid palette after each edit

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.palette: Palette | None = None  # the last valid palette
        self.classes: list[list[Any]] = []  # [name, (r, g, b)] per class, as edited
        self.background = 0
        self.extra: dict[str, Any] = {}  # dont_care, dont_care_color and source of a loaded palette
        self.sample: np.ndarray | None = None
        self.sample_path: Path | None = None
        self._call: Worker | None = None
        self._build()

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        # imported here, not at the top: dataset_page imports this module
        from desktop.training.dataset_page import folder_row

        self.src_edit, self.dst_edit = QLineEdit(), QLineEdit()
        self.src_edit.setPlaceholderText("folder of colour label maps (or aligned A|B images)")
        self.dst_edit.setPlaceholderText("output folder for the index maps")
        self.src_edit.editingFinished.connect(self.load_sample)
        self.half_combo = QComboBox()
        self.half_combo.addItems(list(HALVES))
        self.half_combo.setToolTip("for aligned A|B images: the half that holds the colour label map")
        self.half_combo.currentTextChanged.connect(lambda _: self.load_sample())
        self.max_colors = QSpinBox(minimum=2, maximum=255, value=32)
        self.max_colors.setToolTip("refuse when more colours than this are found (photos, not label maps)")
        self.extract_button = QPushButton("Extract palette")
        self.load_button = QPushButton("Load palette...")
        menu = QMenu(self.load_button)
        for name in list_palettes():
            menu.addAction(name, lambda name=name: self.load_palette(name))
        menu.addSeparator()
        menu.addAction("From a JSON file...", self.load_palette_file)
        self.load_button.setMenu(menu)
        self.save_button = QPushButton("Save palette...")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("palette name")
        self.name_edit.textEdited.connect(lambda _: self.revalidate())
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._on_item_changed)
        self.background_group = QButtonGroup(self)
        self.background_group.idClicked.connect(self._on_background)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020")
        self.error_label.hide()
        self.convert_button = QPushButton("Convert to index maps")
        self.convert_progress = QProgressBar()
        self.convert_progress.hide()
        self.result_label = QLabel("Choose a folder of colour label maps, then extract or load a palette.")
        self.result_label.setWordWrap(True)
        self.problems = QListWidget()
        self.problems.setMaximumHeight(110)
        self.original_view, self.snapped_view = ImageLabel("sample map"), ImageLabel("snapped to the palette")
        self.preview_note = QLabel("")
        self.preview_note.setWordWrap(True)
        self.preview_timer = QTimer(self, singleShot=True, interval=60)
        self.preview_timer.timeout.connect(self.update_preview)
        self.extract_button.clicked.connect(self.extract)
        self.save_button.clicked.connect(self.save_palette)
        self.convert_button.clicked.connect(self.convert)

        form = QFormLayout()
        form.addRow("Label maps", folder_row(self.src_edit, self, "Folder of colour label maps"))
        form.addRow("Label map is", self.half_combo)
        form.addRow("Max colours", self.max_colors)
        palette_row = QHBoxLayout()
        for button in (self.extract_button, self.load_button, self.save_button):
            palette_row.addWidget(button)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(palette_row)
        name_row = QFormLayout()
        name_row.addRow("Palette name", self.name_edit)
        left.addLayout(name_row)
        left.addWidget(self.table, 1)
        left.addWidget(self.error_label)
        out_form = QFormLayout()
        out_form.addRow("Output", folder_row(self.dst_edit, self, "Output folder for index maps"))
        left.addLayout(out_form)
        convert_row = QHBoxLayout()
        convert_row.addWidget(self.convert_button)
        convert_row.addWidget(self.convert_progress, 1)
        left.addLayout(convert_row)
        left.addWidget(self.result_label)
        left.addWidget(QLabel("Problems:"))
        left.addWidget(self.problems)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setMinimumWidth(440)
        self.original_caption = QLabel("<b>Original</b>")
        views = QGridLayout()
        views.addWidget(self.original_caption, 0, 0)
        views.addWidget(QLabel("<b>Snapped to the palette</b>"), 0, 1)
        views.addWidget(self.preview_note, 1, 0, 1, 2)
        for column, view in enumerate((self.original_view, self.snapped_view)):
            view.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            views.addWidget(view, 2, column)
        views.setRowStretch(2, 1)
        right = QVBoxLayout()
        right.addLayout(views, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(left_box)
        layout.addLayout(right, 1)
        self._update_buttons()

    # --- inputs -----------------------------------------------------------------------------------
    @property
    def half(self) -> str | None:
        return HALVES[self.half_combo.currentText()]

    def set_source(self, folder: str | Path, half: str | None = None) -> None:
        """Choose the label-map folder (and which half of aligned images holds the map)."""
        self.half_combo.setCurrentText(next(k for k, v in HALVES.items() if v == half))
        self.src_edit.setText(str(folder))
        self.load_sample()

    def load_sample(self) -> None:
        """Take the first map of the folder for the preview."""
        folder = self.src_edit.text().strip()
        self.sample, self.sample_path = None, None
        if not folder:
            return
        try:
            files = list_images(folder)
            if not files:
                raise GanvasError("no image files in folder", path=folder)
            image = _take_half(read_image(files[0]), self.half)
        except (GanvasError, OSError) as exc:
            self.preview_note.setText(f"Cannot preview: {error_message(exc)}")
            return
        scale = PREVIEW_MAX / max(image.shape[:2])
        if scale < 1:  # nearest neighbour: no new blended colours
            rows = (np.arange(int(image.shape[0] * scale)) / scale).astype(int)
            cols = (np.arange(int(image.shape[1] * scale)) / scale).astype(int)
            image = image[rows][:, cols]
        self.sample, self.sample_path = np.ascontiguousarray(image), files[0]
        self.original_view.set_image(QPixmap.fromImage(qimage_from_array(self.sample)))
        self.original_caption.setText(f"<b>Original</b> ({files[0].name})")
        self.update_preview()

    # --- palette ----------------------------------------------------------------------------------
    def extract(self) -> None:
        folder = self.src_edit.text().strip()
        if not folder or self._call is not None:
            if not folder:
                self.result_label.setText("Choose a folder of colour label maps first.")
            return
        half, max_colors = self.half, self.max_colors.value()
        name = Path(folder).name
        if name.lower() in SPLIT_NAMES and Path(folder).parent.name:
            name = Path(folder).parent.name
        self.result_label.setText(f"Extracting the palette of {folder}...")
        self._start(lambda: api.extract_palette(folder, max_colors=max_colors, aligned_half=half,
                                                name=name or "extracted"),
                    "ganvas-extract-palette", self._on_extracted)

    def _on_extracted(self, palette: Palette) -> None:
        self._end_call()
        self.set_palette(palette)
        message = f"Found {palette.n_classes} classes ({palette.source}). Rename them and pick the background."
        self.result_label.setText(message)
        self.finished.emit(message)

    def load_palette(self, name_or_path: str | Path) -> None:
        """Load a bundled palette by name or a palette JSON file."""
        try:
            palette = Palette.load(name_or_path)
        except GanvasError as exc:
            self._show_error(error_message(exc))
            return
        self.set_palette(palette)
        self.result_label.setText(f"Loaded palette {palette.name!r} with {palette.n_classes} classes.")

    def load_palette_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load palette", "", "Palette JSON (*.json)")
        if path:
            self.load_palette(path)

    def save_palette(self) -> None:
        palette = self.revalidate()
        if palette is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save palette", f"{palette.name}.json", "Palette JSON (*.json)")
        if not path:
            return
        try:
            saved = palette.save(path)
        except GanvasError as exc:
            self._show_error(error_message(exc))
            return
        self.result_label.setText(f"Saved palette to {saved}.")

    def set_palette(self, palette: Palette) -> None:
        """Show ``palette`` in the editor (replacing any edits)."""
        self.classes = [[c.name, c.color] for c in palette.classes]
        self.background = palette.background
        self.extra = {"dont_care": palette.dont_care, "dont_care_color": palette.dont_care_color,
                      "source": palette.source}
        self.name_edit.setText(palette.name)
        self._fill_table()
        self.revalidate()

    def _fill_table(self) -> None:
        self.table.blockSignals(True)
        for button in self.background_group.buttons():
            self.background_group.removeButton(button)
        self.table.setRowCount(len(self.classes))
        for row, (name, color) in enumerate(self.classes):
            id_item = QTableWidgetItem(str(row))
            id_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.table.setItem(row, 0, id_item)
            self.table.setItem(row, 1, QTableWidgetItem(name))
            swatch = QPushButton(" ".join(str(v) for v in color))
            swatch.setToolTip("click to change the colour of this class")
            swatch.setStyleSheet(_swatch_style(color))
            swatch.clicked.connect(lambda _=False, row=row: self.recolor(row))
            self.table.setCellWidget(row, 2, swatch)
            radio = QRadioButton()
            radio.setToolTip("the class the eraser paints")
            radio.setChecked(row == self.background)
            self.background_group.addButton(radio, row)
            cell = QWidget()
            cell_layout = QHBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.addWidget(radio, 0, Qt.AlignmentFlag.AlignCenter)
            self.table.setCellWidget(row, 3, cell)
        self.table.blockSignals(False)

    def rename(self, row: int, name: str) -> None:
        self.table.item(row, 1).setText(name)  # itemChanged updates the class

    def recolor(self, row: int) -> None:
        """Ask for a new colour of class ``row``."""
        old = self.classes[row][1]
        color = QColorDialog.getColor(QColor(*old), self, f"Colour of class {row} ({self.classes[row][0]})")
        if not color.isValid():
            return
        new = (color.red(), color.green(), color.blue())
        self.classes[row][1] = new
        swatch = self.table.cellWidget(row, 2)
        swatch.setText(" ".join(str(v) for v in new))
        swatch.setStyleSheet(_swatch_style(new))
        self.revalidate()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 1 and item.row() < len(self.classes):
            self.classes[item.row()][0] = item.text().strip()
            self.revalidate()

    def _on_background(self, row: int) -> None:
        self.background = row
        self.revalidate()

    def revalidate(self) -> Palette | None:
        """Build the palette from the editor; a ConfigError (duplicate names or colours...) is shown inline."""
        if not self.classes:
            self.palette = None
            self._update_buttons()
            return None
        try:
            names = [name for name, _ in self.classes]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ConfigError(f"class names must be unique; {', '.join(map(repr, duplicates))} is used twice",
                                  value=duplicates)
            palette = Palette(name=self.name_edit.text().strip(),
                              classes=tuple(PaletteClass(i, n, c) for i, (n, c) in enumerate(self.classes)),
                              background=self.background, **self.extra)
        except ConfigError as exc:
            self.palette = None
            self._show_error(error_message(exc))
            self._update_buttons()
            return None
        self.palette = palette
        self._show_error("")
        self._update_buttons()
        self.preview_timer.start()
        self.palette_changed.emit(palette)
        return palette

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _update_buttons(self) -> None:
        idle = self._call is None
        self.extract_button.setEnabled(idle)
        self.save_button.setEnabled(self.palette is not None)
        self.convert_button.setEnabled(idle and self.palette is not None)

    # --- preview ----------------------------------------------------------------------------------
    def update_preview(self) -> None:
        if self.sample is None or self.palette is None:
            return
        index, report = api.snap_to_palette(self.sample, self.palette, path=self.sample_path)
        snapped = api.index_to_color(index, self.palette)
        self.snapped_view.set_image(QPixmap.fromImage(qimage_from_array(np.ascontiguousarray(snapped))))
        name = self.sample_path.name if self.sample_path is not None else "sample"
        if report.ok:
            self.preview_note.setText(f"{name}: every pixel matches the palette.")
        else:
            x, y = report.example_xy  # type: ignore[misc]
            self.preview_note.setText(f"{name}: {100 * report.share:.2f}% of the pixels have unknown colours, "
                                      f"e.g. at x={x}, y={y} colour {list(report.example_color or ())}.")

    # --- convert ----------------------------------------------------------------------------------
    def convert(self) -> None:
        src, dst = self.src_edit.text().strip(), self.dst_edit.text().strip()
        palette = self.revalidate()
        if not src or not dst or palette is None or self._call is not None:
            if not src or not dst:
                self.result_label.setText("Choose a label-map folder and an output folder.")
            return
        half = self.half
        self.problems.clear()
        self.result_label.setText(f"Converting {src} to index maps...")
        self.convert_progress.setRange(0, 0)  # the engine reports no per-file progress: a busy bar
        self.convert_progress.show()
        self._start(lambda: api.convert_color_maps(src, dst, palette, strict=False, aligned_half=half),
                    "ganvas-convert-labels", self._on_converted)

    def _on_converted(self, report: Any) -> None:
        self._end_call()
        self.problems.clear()
        for snap in report.unknown:
            x, y = snap.example_xy
            name = snap.path.name if snap.path is not None else "?"
            self.problems.addItem(f"{name}: {100 * snap.share:.2f}% unknown colours, e.g. at x={x}, y={y} "
                                  f"colour {list(snap.example_color or ())}")
            self.problems.item(self.problems.count() - 1).setToolTip(snap.message())
        if not report.unknown:
            self.problems.addItem("No unknown colours.")
        unknown = (f"; {len(report.unknown)} had unknown colours, snapped to the nearest class (see Problems)"
                   if report.unknown else "")
        folder = report.written[0].parent if report.written else self.dst_edit.text().strip()
        message = f"Wrote {report.n_written} index maps to {folder}{unknown}."
        self.result_label.setText(message)
        self.finished.emit(message)

    # --- background calls -------------------------------------------------------------------------
    def _start(self, function: Any, name: str, on_done: Any) -> None:
        self._call = Worker.call(function, name, self)
        self._call.returned.connect(on_done)
        self._call.errored.connect(self._on_failed)
        self._update_buttons()
        self._call.start()

    def _end_call(self) -> None:
        self._call = None
        self.convert_progress.hide()
        self._update_buttons()

    def _on_failed(self, exc: BaseException) -> None:
        self._end_call()
        message = f"Error: {error_message(exc)}"
        self.result_label.setText(message)
        self.problems.clear()
        self.problems.addItem(message)
        self.finished.emit(message)
