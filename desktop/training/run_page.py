"""The live view of a training run: loss curves, the latest sample grid, progress, speed, device and memory.

Events come from a :class:`~desktop.training.run_controller.RunController`; the curves are filled from the
run's ``log.jsonl`` when a run is opened or resumed, so they survive restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.model_panel import ModelSource
from desktop.training.config_form import format_duration
from desktop.training.retune_dialog import RetuneDialog
from desktop.training.run_controller import RunController
from engine.api import (
    SAMPLE_NAME,
    GanvasError,
    bucket_means,
    latest_sample_path,
    read_log,
    sample_path,
    sample_steps,
    smoothed,
)

MAX_POINTS = 1500  # per curve on screen; longer runs are averaged into buckets
CHART_COLUMNS = 2
RAW_COLOUR, TREND_COLOUR = QColor(150, 190, 230), QColor(20, 90, 170)


class LossCurves(QWidget):
    """One small chart per loss (their scales differ by orders of magnitude), redrawn at most 4 times a second.

    Each chart shows the raw values in a light colour and a smoothed trend (:func:`smoothed`) over them.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: dict[str, list[tuple[int, float]]] = {}
        self.charts: dict[str, tuple[QChartView, QLineSeries, QLineSeries]] = {}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.timer = QTimer(self, singleShot=True, interval=250)
        self.timer.timeout.connect(self.refresh)

    def clear(self) -> None:
        self.data.clear()
        self.refresh()

    def add(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            if value is None or not math.isfinite(value):
                continue
            points = self.data.setdefault(name, [])
            while points and points[-1][0] >= step:  # a resumed run repeats steps after its checkpoint
                points.pop()
            points.append((step, float(value)))
        if not self.timer.isActive():
            self.timer.start()

    def _chart(self, name: str) -> tuple[QChartView, QLineSeries, QLineSeries]:
        if name not in self.charts:
            raw, trend = QLineSeries(), QLineSeries()
            raw.setPen(QPen(RAW_COLOUR, 1))
            trend.setPen(QPen(TREND_COLOUR, 2))
            chart = QChart()
            chart.addSeries(raw)
            chart.addSeries(trend)
            chart.setTitle(name)
            chart.legend().hide()
            chart.setMargins(chart.margins() * 0)
            for axis, side, label in ((QValueAxis(), Qt.AlignmentFlag.AlignBottom, "%d"),
                                      (QValueAxis(), Qt.AlignmentFlag.AlignLeft, "%.3g")):
                axis.setLabelFormat(label)
                axis.setTickCount(4)
                chart.addAxis(axis, side)
                raw.attachAxis(axis)
                trend.attachAxis(axis)
            view = QChartView(chart)
            view.setRenderHint(QPainter.RenderHint.Antialiasing)
            view.setMinimumSize(220, 150)
            index = len(self.charts)
            self.grid.addWidget(view, index // CHART_COLUMNS, index % CHART_COLUMNS)
            self.charts[name] = (view, raw, trend)
        return self.charts[name]

    def refresh(self) -> None:
        for name, (view, _, _) in self.charts.items():
            view.setVisible(bool(self.data.get(name)))
        for name, points in self.data.items():
            if not points:
                continue
            view, raw, trend = self._chart(name)
            shown = bucket_means(points, MAX_POINTS)
            raw.replace([QPointF(s, v) for s, v in shown])
            trend.replace([QPointF(s, v) for s, v in smoothed(shown)])
            x_axis, y_axis = raw.attachedAxes()
            low, high = min(v for _, v in shown), max(v for _, v in shown)
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
            x_axis.setRange(shown[0][0], max(shown[-1][0], shown[0][0] + 1))
            x_axis.applyNiceNumbers()
            y_axis.setRange(low - pad, high + pad)


class ImageLabel(QLabel):
    """Shows a pixmap scaled to fit, keeping its aspect, rescaled when resized."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.original: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 150)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, source: str | Path | QPixmap) -> bool:
        pixmap = source if isinstance(source, QPixmap) else QPixmap(str(source))
        if pixmap.isNull():
            return False
        self.original = pixmap
        self._rescale()
        return True

    def _rescale(self) -> None:
        if self.original is not None:
            self.setPixmap(self.original.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()


class SampleHistory(QWidget):
    """The run's sample grids with a slider over their steps: it follows the newest grid until moved back.

    ``image`` shows the chosen grid; ``slider`` indexes :attr:`steps` (from ``samples/step_N.png``).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.steps: list[int] = []
        self.image = ImageLabel("The sample grid appears here (input | output | target).", self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setToolTip("scrub through the sample grids saved during training")
        self.caption = QLabel("", self)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image, 1)
        layout.addLayout(row)
        self.slider.valueChanged.connect(self._show)
        self._update_slider()

    def show_run(self, run_dir: Path) -> None:
        """Every saved grid of ``run_dir``, showing the newest (or ``latest.png`` when none is numbered)."""
        self.run_dir = run_dir
        self.steps = sample_steps(run_dir)
        self._update_slider(follow=True)
        if not self.steps:
            self.image.set_image(latest_sample_path(run_dir))

    def add_sample(self, path: Path) -> None:
        """A grid saved during training: shown at once when the slider is at the newest, else only added."""
        match = SAMPLE_NAME.fullmatch(path.name)
        if self.run_dir is None or match is None:
            self.image.set_image(path)
            return
        following = self.slider.value() == self.slider.maximum()
        self.steps = sorted(set(self.steps) | {int(match[1])})
        self._update_slider(follow=following)

    def _update_slider(self, follow: bool = False) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.steps) - 1))
        if follow:
            self.slider.setValue(self.slider.maximum())
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(self.steps) > 1)
        self._show(self.slider.value())

    def _show(self, index: int) -> None:
        if self.run_dir is None or not self.steps:
            self.caption.setText("")
            return
        step = self.steps[index]
        self.image.set_image(sample_path(self.run_dir, step))
        newest = " (newest)" if index == len(self.steps) - 1 else ""
        self.caption.setText(f"step {step}{newest}, {index + 1} of {len(self.steps)}")


class RunPage(QWidget):
    """Watch and steer the controller's run; "Use in canvas" hands the checkpoint chosen beside it (``latest``
    by default, or one of the run's ``checkpoints/step_*.safetensors``) to ``load_model``."""

    def __init__(self, controller: RunController, load_model: Callable[[ModelSource], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.load_model = load_model
        self.run_dir: Path | None = None
        self.title = QLabel("No run yet: configure one and press Start.")
        self.title.setStyleSheet("font-weight: bold")
        self.curves = LossCurves()
        self.samples = SampleHistory()
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.stats = QLabel("")
        self.state_label = QLabel("")
        self.error_box = QPlainTextEdit(readOnly=True)
        self.error_box.setStyleSheet("color: #b00020")
        self.error_box.setMaximumHeight(160)
        self.error_box.hide()
        self.buttons = {name: QPushButton(text) for name, text in (
            ("pause", "Pause"), ("resume", "Resume"), ("retune", "Resume with changes..."), ("stop", "Stop"),
            ("use", "Use in canvas"))}
        self.buttons["pause"].setToolTip("save a checkpoint and pause; Resume continues exactly")
        self.buttons["retune"].setToolTip("resume with more steps or new loss weights (e.g. StyleGAN2's R1 gamma)")
        self.buttons["stop"].setToolTip("save a checkpoint and end the run (resumable from the Runs page)")
        self.buttons["use"].setToolTip("load the chosen checkpoint of the run into the drawing window")
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("which checkpoint 'Use in canvas' loads: the latest or an earlier step")
        self.checkpoint_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_checkpoints()
        self._layout()
        self.buttons["pause"].clicked.connect(controller.pause)
        self.buttons["stop"].clicked.connect(controller.stop)
        self.buttons["resume"].clicked.connect(self.resume)
        self.buttons["retune"].clicked.connect(self.open_retune)
        self.retune_dialog: RetuneDialog | None = None
        self.buttons["use"].clicked.connect(self.use_in_canvas)
        controller.event.connect(self.on_event)
        controller.state_changed.connect(self.on_state)
        controller.failed.connect(self.on_failed)
        self.on_state(controller.state)

    def _layout(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.curves)
        splitter.addWidget(self.samples)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        buttons = QHBoxLayout()
        for button in self.buttons.values():
            buttons.addWidget(button)
        buttons.addWidget(self.checkpoint_combo)
        buttons.addWidget(self.state_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.stats)
        layout.addWidget(self.error_box)
        layout.addLayout(buttons)

    def show_run(self, run_dir: str | Path) -> None:
        """Show ``run_dir``: its logged curves and latest sample (before or while it trains)."""
        self.run_dir = Path(run_dir)
        self.title.setText(f"Run: {self.run_dir}")
        self.error_box.hide()
        self.curves.clear()
        for record in read_log(self.run_dir):
            self.curves.add(int(record.pop("step")), {k: v for k, v in record.items() if k != "lr_factor"})
        self.samples.show_run(self.run_dir)
        self.refresh_checkpoints()
        self.on_state(self.controller.state)

    def resume(self) -> None:
        if self.run_dir is not None:
            self.show_run(self.run_dir)
            self.controller.resume(self.run_dir)

    def open_retune(self) -> None:
        """Ask for a new step count and retunable settings, then resume with them."""
        if self.run_dir is None:
            return
        try:
            self.retune_dialog = RetuneDialog(self.run_dir, self)
        except GanvasError as exc:
            self.on_failed(str(exc))
            return
        self.retune_dialog.accepted.connect(self._resume_with_changes)
        self.retune_dialog.open()

    def _resume_with_changes(self) -> None:
        dialog = self.retune_dialog
        if dialog is None or self.run_dir is None:
            return
        self.show_run(self.run_dir)
        self.controller.resume(self.run_dir, steps=dialog.steps(), retune=dialog.changes())

    def use_in_canvas(self) -> None:
        chosen = self.checkpoint_combo.currentData()
        if chosen is not None and Path(chosen).is_file():
            if self.load_model is not None:
                path = Path(chosen)
                step = path.stem.split("_", 1)[1].lstrip("0") or "0"
                self.load_model(ModelSource(f"{path.parent.parent.name} (step {step})", path=str(path)))
            return
        latest = self.latest_checkpoint()
        if latest is not None and self.load_model is not None:
            step = self.controller.last_event.get("step", "")
            self.load_model(ModelSource(f"{latest.parent.name} (step {step})" if step != "" else latest.parent.name,
                                        path=str(latest)))

    def step_checkpoints(self) -> list[Path]:
        """The run's ``checkpoints/step_*.safetensors`` files, oldest first."""
        folder = self.run_dir / "checkpoints" if self.run_dir is not None else None
        if folder is None or not folder.is_dir():
            return []
        return sorted(folder.glob("step_*.safetensors"))

    def refresh_checkpoints(self) -> None:
        """List ``latest`` and the step files in the combo, keeping the choice when it still exists."""
        chosen = self.checkpoint_combo.currentData()
        steps = self.step_checkpoints()
        self.checkpoint_combo.blockSignals(True)
        self.checkpoint_combo.clear()
        self.checkpoint_combo.addItem("latest", None)
        for path in reversed(steps):  # newest first, under latest
            self.checkpoint_combo.addItem(f"step {path.stem.split('_', 1)[1].lstrip('0') or '0'}", str(path))
        index = self.checkpoint_combo.findData(chosen) if chosen is not None else 0
        self.checkpoint_combo.setCurrentIndex(max(index, 0))
        self.checkpoint_combo.blockSignals(False)

    def latest_checkpoint(self) -> Path | None:
        path = self.run_dir / "latest.safetensors" if self.run_dir is not None else None
        return path if path is not None and path.is_file() else None

    # --- controller -------------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind, step, total = event.get("kind"), int(event.get("step") or 0), int(event.get("total") or 0)
        if kind == "error":
            return
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(step)
        if kind == "step":
            self.curves.add(step, event.get("losses") or {})
        if kind == "sample" and event.get("path"):
            self.samples.add_sample(Path(event["path"]))
        if kind in ("checkpoint", "stopped", "done"):
            self.refresh_checkpoints()
            self.buttons["use"].setEnabled(self.latest_checkpoint() is not None)
        parts = []
        if event.get("images"):
            parts.append(f"{event['images'] / 1000:.3g} kimg seen")
        if event.get("it_per_s"):
            parts.append(f"{event['it_per_s']:.2f} it/s")
        if kind == "step" and event.get("eta_s") is not None:
            parts.append(f"ETA {format_duration(event['eta_s'])}")
        if event.get("device"):
            parts.append(f"device: {event['device']}")
        if event.get("memory_mb"):
            parts.append(f"peak memory {event['memory_mb']:.0f} MB")
        parts.append(event.get("message") or f"epoch {event.get('epoch', 0):.2f}")
        self.stats.setText("   |   ".join(parts))

    def on_state(self, state: str) -> None:
        running = state == "running"
        can_resume = state in ("paused", "stopped", "failed", "idle") and self.latest_checkpoint() is not None
        self.buttons["pause"].setEnabled(running)
        self.buttons["stop"].setEnabled(running)
        self.buttons["resume"].setEnabled(can_resume and not self.controller.running)
        can_extend = can_resume or (state == "done" and self.latest_checkpoint() is not None)  # more steps
        self.buttons["retune"].setEnabled(can_extend and not self.controller.running)
        self.buttons["use"].setEnabled(self.latest_checkpoint() is not None)
        self.checkpoint_combo.setEnabled(self.latest_checkpoint() is not None)
        if state == "running":
            self.error_box.hide()
        names = {"stopping": "Saving a checkpoint and stopping...", "paused": "Paused (checkpoint saved).",
                 "stopped": "Stopped (checkpoint saved).", "done": "Training finished."}
        self.state_label.setText(names.get(state, ""))

    def on_failed(self, text: str) -> None:
        self.error_box.setPlainText(text)
        self.error_box.show()
        self.on_state("failed")
