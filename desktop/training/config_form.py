"""The run configuration form, generated from a family's config dataclass plus the essentials of training.

Widgets follow field types (bool -> check box, int -> spin box, float -> double spin box, a string whose
docs list ````choices```` -> combo box, anything else -> text). Tooltips are the fields' help (``metadata["help"]``).
Values start at ``family.auto_config(size, ...)``; only fields the user edits are kept as overrides, so
size-derived fields (U-Net depth, residual blocks, resolution) follow the size until edited. Without CUDA
the defaults are smaller (``CPU_DEFAULTS``). "Probe speed" runs ``ganvas bench train`` in a subprocess.
A run that starts from a model (:meth:`ConfigForm.set_init`) takes the model's family and network settings,
shown locked; its Adam settings (``OPTIMIZER_FIELDS``), training settings and data stay the user's.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtGui import QPixmap
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
from engine.api import (
    OPTIMIZER_FIELDS,
    DataConfig,
    GanvasError,
    TrainConfig,
    cpu_has_bf16,
    field_help,
    fit_palette_to_data,
    from_dict,
    palette_mismatch,
    replace,
    size_fields,
    to_dict,
)

CPU_DEFAULTS = {"ngf": 32, "ndf": 32}
CPU_SIZE, GPU_SIZE = 128, 256
TRAIN_FIELDS = ("steps", "batch_size", "device", "seed", "sample_every", "checkpoint_every", "amp", "cpu_bf16")
DATA_FIELDS = ("direction", "preprocess", "flip")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# Plain names for the form's rows; the field's own name and its docstring text are in the tooltip.
PLAIN_NAMES = {
    "ngf": "Generator width", "ndf": "Discriminator width", "n_layers_d": "Discriminator layers",
    "n_layers_D": "Discriminator layers", "num_D": "Discriminators (scales)", "gp_weight": "Gradient penalty weight",
    "amp": "Mixed precision (CUDA)", "cpu_bf16": "bf16 on this CPU (AMX)", "lambda_l1": "L1 loss weight", "lambda_a": "Cycle loss weight A",
    "lambda_b": "Cycle loss weight B", "lambda_identity": "Identity loss weight", "lambda_kld": "KL loss weight",
    "lambda_feat": "Feature matching weight", "lambda_vgg": "Perceptual (VGG) weight", "depth": "U-Net depth",
    "norm": "Normalisation", "gan_mode": "GAN loss", "in_channels": "Input channels",
    "out_channels": "Output channels", "n_blocks": "Residual blocks", "pool_size": "Image pool size",
    "palette": "Label palette", "label_nc": "Label channels", "contain_dont_care": "Don't-care channel",
    "use_instance": "Instance edges", "num_upsampling_layers": "Upsampling layers", "spade_hidden": "SPADE width",
    "param_free_norm": "Normalisation", "use_encoder": "Style encoder", "z_dim": "Latent size (z)",
    "w_dim": "Style size (w)", "lr_g": "Generator learning rate", "lr_d": "Discriminator learning rate",
    "betas": "Adam betas", "vgg_weights": "VGG weights file", "resolution": "Resolution",
    "mapping_layers": "Mapping layers", "mapping_lr_mul": "Mapping LR multiplier", "channel_base": "Channel base",
    "channel_max": "Channel maximum", "mbstd_group": "Minibatch-stddev group", "r1_gamma": "R1 penalty (gamma)",
    "r1_interval": "R1 every (steps)", "pl_weight": "Path length weight", "pl_interval": "Path length every",
    "pl_batch_shrink": "Path length batch shrink", "pl_decay": "Path length decay",
    "style_mixing_prob": "Style mixing probability", "ema_kimg": "Average half-life (kimg)",
    "ema_rampup": "Average ramp-up", "diffaug": "Differentiable augmentation",
    "steps": "Steps", "batch_size": "Batch size", "device": "Device", "seed": "Random seed",
    "sample_every": "Sample every (steps)", "checkpoint_every": "Checkpoint every (steps)",
    "direction": "Direction", "preprocess": "Resize and crop", "flip": "Random flips",
}


def doc_tooltip(doc: str) -> str:
    """A field's doc as tooltip rich text (always rich, so ``A->B`` shows its arrow): ````wgan```` reads as
    code, not as two pairs of backticks."""
    text = re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(doc, quote=False))
    return f"<span>{text}</span>" if doc else ""


def plain_label(name: str, doc: str) -> QLabel:
    """The row label of field ``name``: a plain name, with the field's name and its doc (already
    :func:`doc_tooltip` text, as the editor's tooltip is) as the tooltip."""
    label = QLabel(PLAIN_NAMES.get(name, name.replace("_", " ").capitalize()))
    label.setToolTip(f"<b>{name}</b>: {doc}" if doc else name)
    return label


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
    widget.setToolTip(doc_tooltip(doc))
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


KIND_NAMES = {"label": "label map", "edges": "edges", "sketch": "sketch", "photo": "photo"}
PAIR_HEIGHT = 110


def sample_pair(report: Any) -> tuple[QPixmap, QPixmap] | None:
    """Side A and side B of the report's first sample pair (aligned: the two halves of one file)."""
    if not report.preview or report.layout not in ("aligned", "paired"):
        return None
    first = Path(report.preview[0])
    if report.layout == "aligned":
        both = QPixmap(str(first))
        if both.isNull():
            return None
        half = both.width() // 2
        return both.copy(0, 0, half, both.height()), both.copy(half, 0, half, both.height())
    other = next((p for p in (first.parent.parent / "B").glob(first.stem + ".*")), None)
    if other is None:
        return None
    a, b = QPixmap(str(first)), QPixmap(str(other))
    return None if a.isNull() or b.isNull() else (a, b)


class PairPreview(QWidget):
    """The two sides of a sample pair, captioned input and target for the chosen direction."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmaps: dict[str, QPixmap] = {}
        self.kinds: dict[str, str] = {}
        self.images = [QLabel(), QLabel()]
        self.captions = [QLabel(), QLabel()]
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for image, caption in zip(self.images, self.captions, strict=True):
            column = QVBoxLayout()
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(image)
            column.addWidget(caption)
            layout.addLayout(column)
        self.hide()

    def set_pair(self, pair: tuple[QPixmap, QPixmap] | None, kinds: dict[str, str]) -> None:
        self.pixmaps = dict(zip("AB", pair, strict=True)) if pair else {}
        self.kinds = dict(kinds)
        self.setVisible(bool(pair))

    def set_direction(self, direction: str) -> None:
        """Input on the left, target on the right, each named with its side and what it shows."""
        if not self.pixmaps:
            return
        order = ("A", "B") if direction == "AtoB" else ("B", "A")
        for index, (side, role) in enumerate(zip(order, ("Input (you draw)", "Target (the model makes)"),
                                                 strict=True)):
            kind = KIND_NAMES.get(self.kinds.get(side, ""), "")
            self.images[index].setPixmap(self.pixmaps[side].scaledToHeight(
                PAIR_HEIGHT, Qt.TransformationMode.SmoothTransformation))
            self.captions[index].setText(f"{role}: side {side}" + (f", {kind}" if kind else ""))


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
        self.report: Any = None  # the dataset check's DatasetReport
        self.init: Any = None  # engine.train.finetune.SourceInfo of the model the run starts from, or None
        self.init_label = QLabel("a fresh network")
        self.init_label.setWordWrap(True)
        self.init_button = QPushButton("Start from a model...")
        self.init_button.setToolTip("start from a bundled model, one of your runs or a checkpoint file: a model "
                                    "that already draws something close has less to learn from your data")
        self.clear_init_button = QPushButton("Fresh network")
        self.clear_init_button.setToolTip("start from random weights again")
        self.clear_init_button.hide()
        self.network_note = QLabel()
        self.network_note.setWordWrap(True)
        self.network_note.hide()
        self.pair_view = PairPreview()
        self.model_editors: dict[str, tuple[QWidget, Any]] = {}
        self.family_combo = QComboBox()
        self.family_combo.addItems(families)
        self.recipe_combo = QComboBox()
        self.recipe_combo.setToolTip("a named set of the family's settings: default, or the paper's (reference); "
                                     "see docs/recipes.md")
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
        if not has_cuda:  # mixed precision is a CUDA feature: shown unticked and off without a GPU
            amp = self.train_editors["amp"][0]
            set_editor_value(amp, False)
            amp.setEnabled(False)
        if not cpu_has_bf16():  # bf16 on the CPU needs its bf16 units: shown unticked and off without them
            cpu_bf16 = self.train_editors["cpu_bf16"][0]
            set_editor_value(cpu_bf16, False)
            cpu_bf16.setEnabled(False)
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
        self.recipe_combo.currentTextChanged.connect(self._on_recipe)
        self.size_box.valueChanged.connect(self._refresh_model)
        self.probe_button.clicked.connect(self.probe_speed)
        for widget, _ in (*self.train_editors.values(), *self.data_editors.values()):
            changed_signal(widget).connect(self._validate)
        self.data_editors["direction"][0].currentTextChanged.connect(self._on_direction)
        self.set_family(self.family_combo.currentText())

    def _editors(self, cls: type, names: tuple[str, ...], defaults: Any) -> dict[str, tuple[QWidget, Any]]:
        docs, hints = field_help(cls), typing.get_type_hints(cls)
        return {n: (make_editor(hints[n], getattr(defaults, n), docs.get(n, "")), hints[n]) for n in names}

    def _layout(self) -> None:
        top = QFormLayout()
        start = QHBoxLayout()
        start.addWidget(self.init_label, 1)
        start.addWidget(self.init_button)
        start.addWidget(self.clear_init_button)
        top.addRow("Start from", start)
        top.addRow("Family", self.family_combo)
        top.addRow("Recipe", self.recipe_combo)
        top.addRow("Image size", self.size_box)
        if self.gpus_box is not None:
            top.addRow("GPUs", self.gpus_box)
        training = QGroupBox("Training")
        form = QFormLayout(training)
        for name, (widget, _) in (*self.train_editors.items(), *self.data_editors.items()):
            form.addRow(plain_label(name, widget.toolTip()), widget)
        form.addRow(self.pair_view)
        columns = QHBoxLayout()
        columns.addWidget(training, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.model_box)
        network = QVBoxLayout()
        network.addWidget(self.network_note)
        network.addWidget(scroll, 1)
        columns.addLayout(network, 1)
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
        from engine.api import family_configs

        self.family_name, self.family, self.edited = name, family_configs(name), {}
        self.family_combo.setCurrentText(name)
        self.recipe_combo.blockSignals(True)
        self.recipe_combo.clear()
        self.recipe_combo.addItems(["default", *sorted(self.family.recipes)])
        self.recipe_combo.setEnabled(len(self.family.recipes) > 0)
        self.recipe_combo.blockSignals(False)
        while self.model_layout.rowCount():
            self.model_layout.removeRow(0)
        self.model_editors = {}
        docs, hints = field_help(self.family.config_cls), typing.get_type_hints(self.family.config_cls)
        config = self._model_config()
        for f in dataclasses.fields(self.family.config_cls):
            widget = make_editor(hints[f.name], getattr(config, f.name), docs.get(f.name, ""))
            self.model_editors[f.name] = (widget, hints[f.name])
            changed_signal(widget).connect(lambda *_, n=f.name: self._on_edit(n))
            if self.init is not None and f.name not in OPTIMIZER_FIELDS:  # learning rates stay this run's
                widget.setEnabled(False)
                widget.setToolTip(f"from {self.init.title}: {widget.toolTip()}")
            elif f.name in size_fields(self.family.config_cls):  # set by "Image size"
                widget.setEnabled(False)
            self.model_layout.addRow(plain_label(f.name, widget.toolTip()), widget)
        self._validate()

    # --- starting from a model ------------------------------------------------------------------------
    def set_init(self, source: Any) -> None:
        """Start the run from ``source`` (an :class:`engine.train.finetune.SourceInfo`): its family and network
        settings, shown locked, and its training size as a start; the rest stays editable."""
        self.init = source
        self.size_box.blockSignals(True)
        self.size_box.setValue(source.size[0])
        self.size_box.blockSignals(False)
        self.family_combo.setEnabled(False)
        self.family_combo.setToolTip(f"the family of {source.title}")
        if self.gpus_box is not None:
            self.gpus_box.setEnabled(False)
            self.gpus_box.setToolTip("a run that starts from a model trains in one process")
        self.init_label.setText(f"<b>{source.title}</b> ({source.family}, step {source.step}: "
                                f"{', '.join(source.networks)})")
        self.init_label.setToolTip(str(source.path))
        self.network_note.setText(f"These network settings come from {source.title} and cannot change here: its "
                                  "weights only fit this network. Steps, learning rate, batch size and data are "
                                  "this run's.")
        self.network_note.show()
        self.clear_init_button.show()
        self.set_family(source.family)

    def clear_init(self) -> None:
        """Back to a fresh network of the current family, with every setting editable."""
        self.init = None
        self.family_combo.setEnabled(True)
        self.family_combo.setToolTip("")
        if self.gpus_box is not None:
            self.gpus_box.setEnabled(True)
        self.init_label.setText("a fresh network")
        self.init_label.setToolTip("")
        self.network_note.hide()
        self.clear_init_button.hide()
        self.set_family(self.family_name)

    def dataset_refuses_init(self) -> str:
        """Why the chosen model cannot train on the checked dataset ("" when it can, or nothing is known): another
        family's data, or label maps in another palette than the one the model draws in."""
        fits = tuple(getattr(self.report, "fits", ()) or ())
        if self.init is None or not fits:
            return ""
        if self.init.family not in fits:
            return (f"{self.init.title} is a {self.init.family} model, and this dataset ({self.report.layout}) "
                    f"trains {', '.join(fits)}: choose data of its kind, or another model to start from.")
        mismatch = palette_mismatch(str(self.init.model_config.get("palette") or ""), self.report.palette)
        return f"{self.init.title} cannot train on this dataset: {mismatch}." if mismatch else ""

    def set_data_path(self, path: str) -> None:
        self.data_path = path
        self._validate()

    def set_dataset_report(self, report: Any) -> None:
        """Take the direction that maps the drawable side to the photo (when the check can tell), show a
        sample pair as input and target, and remember what the input side is for the app's canvas."""
        self.report = report
        self.pair_view.set_pair(sample_pair(report), report.sides)
        combo = self.data_editors["direction"][0]
        if report.direction:
            combo.setCurrentText(report.direction)
        self._on_direction(combo.currentText())

    def _on_direction(self, direction: str) -> None:
        self.pair_view.set_direction(direction)
        self._refresh_model()

    @property
    def direction(self) -> str:
        return self.data_editors["direction"][0].currentText()

    def draw_as(self) -> str:
        """What the input side of the dataset is for the canvas (``""`` when the check could not tell)."""
        return self.report.input_kind(self.direction) if self.report is not None else ""

    def _dataset_defaults(self, fields: set[str]) -> dict[str, Any]:
        """A label-map input names its palette (so the app draws in it), unless the user set one."""
        palette = getattr(self.report, "palette", "")
        return {"palette": palette} if "palette" in fields and palette and self.draw_as() == "label" else {}

    def set_dataset_size(self, images: int) -> None:
        """Suggest a step count of about :data:`DEFAULT_EPOCHS` passes over ``images`` training images."""
        steps = suggested_steps(images, editor_value(*self.train_editors["batch_size"]))
        set_editor_value(self.train_editors["steps"][0], steps)

    def _size(self) -> tuple[int, int]:
        return (self.size_box.value(), self.size_box.value())

    def _model_config(self) -> Any:
        if self.init is not None:  # the model's own network (its weights fit nothing else), this run's Adam
            optimizer = {name: value for name, value in self.edited.items() if name in OPTIMIZER_FIELDS}
            config = replace(from_dict(self.family.config_cls, self.init.model_config), **optimizer)
            return fit_palette_to_data(self.family_name, config, self.draw_as())
        fields = {f.name for f in dataclasses.fields(self.family.config_cls)}
        base = {} if self.has_cuda else {k: v for k, v in CPU_DEFAULTS.items() if k in fields}
        base.update(self._dataset_defaults(fields))
        base.update(self.family.recipes.get(self.recipe_combo.currentText(), {}))
        return self.family.auto_config(self._size(), {**base, **self.edited})

    def _on_recipe(self, _name: str) -> None:
        """A recipe sets its values in the fields the user has not edited."""
        self._refresh_model()

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
        data = DataConfig(path=self.data_path, draw_as=self.draw_as(),
                          **{n: editor_value(w, tp) for n, (w, tp) in self.data_editors.items()})
        spec = {"family": self.family_name, "model_config": to_dict(self._model_config()),
                "train_config": to_dict(train), "data_config": to_dict(data)}
        if self.init is not None:
            from engine.api import init_spec_key

            spec[init_spec_key()] = str(self.init.path)
        return spec

    def nproc(self) -> int:
        """Training processes to start: the GPUs chosen, or 1 (a single GPU, or the CPU)."""
        device = editor_value(*self.train_editors["device"])
        if self.gpus_box is None or device not in ("auto", "cuda") or self.init is not None:
            return 1
        return self.gpus_box.value()

    def _validate(self, *_: Any) -> bool:
        try:
            self.spec()
        except (GanvasError, ValueError, TypeError) as exc:
            self.error_label.setText(str(exc))
            ok = False
        else:
            refused = self.dataset_refuses_init()
            self.error_label.setText(refused or ("" if self.data_path else
                                                 "Choose a dataset on the Dataset page first."))
            ok = bool(self.data_path) and not refused
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
            if name in size_fields(self.family.config_cls):  # --size says it
                continue
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
