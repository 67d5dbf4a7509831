"""The run configuration form, generated from a family's config dataclass plus the essentials of training.

Widgets follow field types (bool -> check box, int -> spin box, float -> double spin box, a string whose
docs list ````choices```` -> combo box, anything else -> text). Tooltips come from the ``Args:`` docs.
Values start at ``family.auto_config(size, ...)``; only fields the user edits are kept as overrides, so
size-derived fields (U-Net depth, residual blocks, resolution) follow the size until edited. Without CUDA
the defaults are smaller (``CPU_DEFAULTS``). "Probe speed" runs ``ganvas bench train`` in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing
from typing import Any

from PySide6.QtCore import QProcess, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.training.run_controller import PROJECT_ROOT
from engine.cli_args import field_docs
from engine.config import DataConfig, TrainConfig, to_dict
from engine.errors import GanvasError

CPU_DEFAULTS = {"ngf": 32, "ndf": 32}
CPU_SIZE, GPU_SIZE = 128, 256
TRAIN_FIELDS = ("steps", "batch_size", "lr", "device", "seed", "sample_every", "checkpoint_every", "amp")
DATA_FIELDS = ("direction", "preprocess", "flip")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class FloatBox(QDoubleSpinBox):
    """A double spin box that shows 0.0002 and 100 rather than 0.000200 and 100.000000."""

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"


def choices_from_doc(doc: str, default: Any) -> list[str]:
    """Quoted ````words```` of a field's doc when the default is one of them (e.g. norms, GAN modes)."""
    words = list(dict.fromkeys(re.findall(r"``([\w-]+)``", doc)))
    return words if isinstance(default, str) and default in words and len(words) > 1 else []


def make_editor(tp: Any, value: Any, doc: str) -> QWidget:
    """A widget for one field of type ``tp`` showing ``value``; read back with :func:`editor_value`."""
    if tp is bool:
        widget: QWidget = QCheckBox()
    elif tp is int:
        widget = QSpinBox()
        widget.setRange(0, 10**9)
    elif tp is float:
        widget = FloatBox()
        widget.setDecimals(6)
        widget.setRange(0.0, 1e6)
        widget.setSingleStep(0.1 if abs(value) >= 1 else 0.0001)
    elif tp is str and (choices := choices_from_doc(doc, value)):
        widget = QComboBox()
        widget.addItems(choices)
    else:
        widget = QLineEdit()
        widget.setPlaceholderText("auto")
    widget.setProperty("field_type", repr(tp))
    widget.setToolTip(doc)
    set_editor_value(widget, value)
    return widget


def set_editor_value(widget: QWidget, value: Any) -> None:
    widget.blockSignals(True)
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QSpinBox | QDoubleSpinBox):
        widget.setValue(value)
    elif isinstance(widget, QComboBox):
        widget.setCurrentText(str(value))
    else:
        text = "" if value is None else ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
        widget.setText(text)
    widget.blockSignals(False)


def editor_value(widget: QWidget, tp: Any) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    text = widget.text().strip()
    if not text:
        return None
    if tp is str or str in typing.get_args(tp):
        return text
    numbers = [float(v) if "." in v or "e" in v.lower() else int(v) for v in text.replace("x", ",").split(",")]
    return numbers[0] if len(numbers) == 1 and "tuple" not in repr(tp) else tuple(numbers)


def changed_signal(widget: QWidget) -> Any:
    for name in ("toggled", "valueChanged", "currentTextChanged", "textEdited"):
        if hasattr(widget, name):
            return getattr(widget, name)
    raise TypeError(widget)


DEFAULT_EPOCHS = 20  # enough passes to see a family learn; users train longer for quality


def suggested_steps(images: int, batch_size: int) -> int:
    """About DEFAULT_EPOCHS epochs, at least 500 and at most 200000 steps, rounded to a hundred."""
    steps = DEFAULT_EPOCHS * max(1, images) / max(1, batch_size)
    return int(min(200_000, max(500, round(steps, -2))))


class ConfigForm(QWidget):
    """Family choice, its network fields and the training essentials; :meth:`spec` returns a RunSpec dict."""

    changed = Signal()

    def __init__(self, families: list[str], has_cuda: bool, parent: QWidget | None = None,
                 gpu_count: int = 0) -> None:
        super().__init__(parent)
        self.has_cuda = has_cuda
        self.gpus_box: QSpinBox | None = None  # shown only on a machine with several GPUs
        if gpu_count > 1:
            self.gpus_box = QSpinBox()
            self.gpus_box.setRange(1, gpu_count)
            self.gpus_box.setToolTip("train on this many GPUs at once, one process each (torchrun); the batch "
                                     "size is per GPU")
        self.data_path = ""
        self.family_name = ""
        self.family: Any = None
        self.edited: dict[str, Any] = {}
        self.model_editors: dict[str, tuple[QWidget, Any]] = {}
        self.family_combo = QComboBox()
        self.family_combo.addItems(families)
        self.size_box = QSpinBox()
        self.size_box.setRange(16, 4096)
        self.size_box.setSingleStep(32)
        self.size_box.setValue(GPU_SIZE if has_cuda else CPU_SIZE)
        self.size_box.setToolTip("training crop size in pixels (square)")
        self.train_editors = self._editors(TrainConfig, TRAIN_FIELDS, TrainConfig(steps=2000))
        self.data_editors = self._editors(DataConfig, DATA_FIELDS, DataConfig())
        device = QComboBox()
        device.addItems(DEVICE_CHOICES)
        device.setToolTip(self.train_editors["device"][0].toolTip())
        self.train_editors["device"] = (device, str)
        self.model_box = QGroupBox("Network")
        self.model_layout = QFormLayout(self.model_box)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b00020")
        self.error_label.setWordWrap(True)
        self.probe_button = QPushButton("Probe speed")
        self.probe_button.setToolTip("time one training step of this configuration (ganvas bench train)")
        self.probe_label = QLabel("")
        self.probe: QProcess | None = None
        self._layout()
        self.family_combo.currentTextChanged.connect(self.set_family)
        self.size_box.valueChanged.connect(self._refresh_model)
        self.probe_button.clicked.connect(self.probe_speed)
        for widget, _ in (*self.train_editors.values(), *self.data_editors.values()):
            changed_signal(widget).connect(self._validate)
        self.set_family(self.family_combo.currentText())

    def _editors(self, cls: type, names: tuple[str, ...], defaults: Any) -> dict[str, tuple[QWidget, Any]]:
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        return {n: (make_editor(hints[n], getattr(defaults, n), docs.get(n, "")), hints[n]) for n in names}

    def _layout(self) -> None:
        top = QFormLayout()
        top.addRow("Family", self.family_combo)
        top.addRow("Image size", self.size_box)
        if self.gpus_box is not None:
            top.addRow("GPUs", self.gpus_box)
        training = QGroupBox("Training")
        form = QFormLayout(training)
        for name, (widget, _) in (*self.train_editors.items(), *self.data_editors.items()):
            form.addRow(name.replace("_", " "), widget)
        columns = QHBoxLayout()
        columns.addWidget(training, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.model_box)
        columns.addWidget(scroll, 1)
        probe = QHBoxLayout()
        probe.addWidget(self.probe_button)
        probe.addWidget(self.probe_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(columns, 1)
        layout.addLayout(probe)
        layout.addWidget(self.error_label)

    # --- family and values ----------------------------------------------------------------------------
    def set_family(self, name: str) -> None:
        from engine.registry import get_family

        self.family_name, self.family, self.edited = name, get_family(name), {}
        self.family_combo.setCurrentText(name)
        while self.model_layout.rowCount():
            self.model_layout.removeRow(0)
        self.model_editors = {}
        docs, hints = field_docs(self.family.config_cls), typing.get_type_hints(self.family.config_cls)
        config = self._model_config()
        for f in dataclasses.fields(self.family.config_cls):
            widget = make_editor(hints[f.name], getattr(config, f.name), docs.get(f.name, ""))
            self.model_editors[f.name] = (widget, hints[f.name])
            changed_signal(widget).connect(lambda *_, n=f.name: self._on_edit(n))
            self.model_layout.addRow(f.name.replace("_", " "), widget)
        self._validate()

    def set_data_path(self, path: str) -> None:
        self.data_path = path
        self._validate()

    def set_dataset_size(self, images: int) -> None:
        """Suggest a step count of about :data:`DEFAULT_EPOCHS` passes over ``images`` training images."""
        steps = suggested_steps(images, editor_value(*self.train_editors["batch_size"]))
        set_editor_value(self.train_editors["steps"][0], steps)

    def _size(self) -> tuple[int, int]:
        return (self.size_box.value(), self.size_box.value())

    def _model_config(self) -> Any:
        fields = {f.name for f in dataclasses.fields(self.family.config_cls)}
        base = {} if self.has_cuda else {k: v for k, v in CPU_DEFAULTS.items() if k in fields}
        return self.family.auto_config(self._size(), {**base, **self.edited})

    def _on_edit(self, name: str) -> None:
        widget, tp = self.model_editors[name]
        try:
            self.edited[name] = editor_value(widget, tp)
        except ValueError:
            self.edited.pop(name, None)
        self._validate()

    def _refresh_model(self) -> None:
        """Show the values the current size implies for fields the user has not edited."""
        try:
            config = self._model_config()
        except GanvasError as exc:
            self.error_label.setText(str(exc))
            return
        for name, (widget, _) in self.model_editors.items():
            if name not in self.edited:
                set_editor_value(widget, getattr(config, name))
        self._validate()

    def spec(self) -> dict[str, Any]:
        """The RunSpec JSON of the form (raises :class:`GanvasError` for invalid values)."""
        values = {n: editor_value(w, tp) for n, (w, tp) in self.train_editors.items()}
        train = TrainConfig(size=self._size(), **values)
        data = DataConfig(path=self.data_path, **{n: editor_value(w, tp) for n, (w, tp) in self.data_editors.items()})
        return {"family": self.family_name, "model_config": to_dict(self._model_config()),
                "train_config": to_dict(train), "data_config": to_dict(data)}

    def nproc(self) -> int:
        """Training processes to start: the GPUs chosen, or 1 (a single GPU, or the CPU)."""
        device = editor_value(*self.train_editors["device"])
        if self.gpus_box is None or device not in ("auto", "cuda"):
            return 1
        return self.gpus_box.value()

    def _validate(self, *_: Any) -> bool:
        try:
            self.spec()
        except (GanvasError, ValueError, TypeError) as exc:
            self.error_label.setText(str(exc))
            ok = False
        else:
            self.error_label.setText("" if self.data_path else "Choose a dataset on the Dataset page first.")
            ok = bool(self.data_path)
        self.changed.emit()
        return ok

    @property
    def valid(self) -> bool:
        return self._validate()

    # --- speed probe -----------------------------------------------------------------------------------
    def probe_arguments(self) -> list[str]:
        spec = self.spec()
        train = spec["train_config"]
        args = ["-m", "engine.cli", "bench", "train", self.family_name, "--size", str(self.size_box.value()),
                "--batch-size", str(train["batch_size"]), "--device", train["device"], "--steps", "1",
                "--repeat", "1", "--warmup", "1", "--json"]
        for name, value in spec["model_config"].items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + flag[2:])
            elif value is not None:
                args += [flag, ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)]
        return args

    def probe_speed(self) -> None:
        if self.probe is not None:
            return
        try:
            args = self.probe_arguments()
        except (GanvasError, ValueError) as exc:
            self.probe_label.setText(str(exc))
            return
        self.probe = QProcess(self)
        self.probe.setWorkingDirectory(str(PROJECT_ROOT))
        self.probe.finished.connect(self._on_probe_finished)
        self.probe_button.setEnabled(False)
        self.probe_label.setText("Measuring one training step...")
        self.probe.start(sys.executable, args)

    def _on_probe_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        out = bytes(self.probe.readAllStandardOutput()).decode(errors="replace").strip().splitlines()
        err = bytes(self.probe.readAllStandardError()).decode(errors="replace").strip().splitlines()
        self.probe, _ = None, self.probe_button.setEnabled(True)
        try:
            result = json.loads(out[-1])
            seconds = float(result["s_per_iter"])
        except (IndexError, ValueError, KeyError):
            self.probe_label.setText("Probe failed: " + (err[-1] if err else f"exit code {code}"))
            return
        steps = editor_value(*self.train_editors["steps"])
        self.probe_label.setText(f"{seconds:.3f} s/iter on {result.get('device', '?')}; "
                                 f"{steps} steps take about {format_duration(seconds * steps)}")


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
