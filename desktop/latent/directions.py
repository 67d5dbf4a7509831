"""The latent editor's Edit directions section: PCA (GANSpace) or SeFa directions on sliders."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton, QWidget

from desktop.latent.controls import LayerRange, StrengthSlider
from desktop.latent.model import LatentModel
from desktop.workers import Worker, error_message

DIRECTION_COUNT = 5
PCA_SAMPLES = 10_000
METHODS = (("PCA (GANSpace)", "pca"), ("SeFa", "sefa"))


class DirectionsSection(QGroupBox):
    """Sliders along the strongest directions of the chosen method, and the style layers they move.

    Directions are computed once per model and method, off the UI thread (or read from the file beside the
    checkpoint); the model's :attr:`~desktop.latent.model.LatentModel.directions` are the chosen method's.

    Signals:
        changed(): the user changed a control (render again).
        ready(): the chosen method's directions arrived while some strength is set (render again).
    """

    changed = Signal()
    ready = Signal()

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Edit directions", parent)
        self.model = model
        self._computed: dict[str, Any] = {}  # directions by method, for the current model
        self._call: Worker | None = None
        self.method_combo = QComboBox(self)
        for text, method in METHODS:
            self.method_combo.addItem(text, method)
        self.method_combo.setToolTip("PCA of sampled w (GANSpace) or the generator's own style weights (SeFa)")
        self.status = QLabel(self)
        self.sliders = [StrengthSlider(f"{i + 1}", parent=self) for i in range(DIRECTION_COUNT)]
        self.layers = LayerRange(self)
        self.layers.setToolTip("The style layers the directions move (low: pose and shape, high: colour)")
        self.reset_button = QPushButton("Reset edits", self)
        form = QFormLayout(self)
        form.addRow("Method:", self.method_combo)
        form.addRow(self.status)
        for slider in self.sliders:
            form.addRow(slider)
            slider.value_changed.connect(self._control_changed)
        form.addRow("Layers:", self.layers)
        form.addRow(self.reset_button)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.layers.changed.connect(self._control_changed)
        self.reset_button.clicked.connect(self.reset_edits)
        model.directions_method = self.method_combo.currentData()
        model.session_changed.connect(self._on_session)
        model.latent_loaded.connect(lambda: self.reset_edits(render=False))

    def strengths(self) -> tuple[float, ...]:
        return tuple(slider.value() for slider in self.sliders)

    def is_busy(self) -> bool:
        return self._call is not None

    def reset_edits(self, render: bool = True) -> None:
        """All direction strengths back to 0."""
        for slider in self.sliders:
            slider.set_value(0.0, emit=False)
        if render:
            self.changed.emit()

    def _on_session(self, session: Any) -> None:
        self._computed = {}
        self._call = None
        if session is None:
            self.status.setText("")
            return
        num_ws, groups, resolutions = self.model.style_layers()
        self.layers.set_layers(num_ws, 0, num_ws - 1, groups, resolutions)
        self.reset_edits(render=False)
        self._compute()

    def _control_changed(self, *_: Any) -> None:
        self.changed.emit()

    def _method_changed(self) -> None:
        method = self.method_combo.currentData()
        self.model.directions_method = method
        self.model.directions = self._computed.get(method)
        self.reset_edits(render=False)
        self._compute()
        self.changed.emit()

    def _compute(self) -> None:
        method = self.method_combo.currentData()
        if self.model.session is None or method in self._computed or self._call is not None:
            self._show_state()
            return
        session = self.model.session
        k = min(DIRECTION_COUNT, session.w_dim)
        samples = PCA_SAMPLES

        def compute() -> tuple[Any, str, Any]:  # read from the file beside the checkpoint when it is there
            return session, method, session.saved_or_new_directions(method, k, samples=samples)

        self._call = Worker.call(compute, "ganvas-latent-directions", self)
        self._call.returned.connect(self._on_directions)
        self._call.errored.connect(self._on_failed)
        self._call.start()
        self._show_state()
        self.model.busy_changed.emit()

    def _on_directions(self, result: tuple[Any, str, Any]) -> None:
        session, method, directions = result
        self._call = None
        self.model.busy_changed.emit()
        if session is not self.model.session:
            return
        self._computed[method] = directions
        self.model.directions = self._computed.get(self.method_combo.currentData())
        if self.method_combo.currentData() not in self._computed:
            self._compute()  # the user switched method meanwhile
        self._show_state()
        if any(self.strengths()):
            self.ready.emit()

    def _on_failed(self, exc: BaseException) -> None:
        self._call = None
        self.model.busy_changed.emit()
        self.status.setText(f"Directions failed: {error_message(exc)}")

    def _show_state(self) -> None:
        directions = self.model.directions
        ready = directions is not None
        for i, slider in enumerate(self.sliders):
            slider.setEnabled(ready and i < len(directions))
            if ready and i < len(directions):
                slider.setToolTip(f"Direction {i + 1}: {_value_text(directions, i)}")
        if self.model.session is None:
            text = ""
        elif ready:
            text = f"{len(directions)} directions, strongest first"
        else:
            text = "Computing directions..."
        self.status.setText(text)


def _value_text(directions: Any, index: int) -> str:
    value = float(directions.values[index])
    if directions.method == "pca":
        return f"{value * 100:.1f}% of the variance of w"
    return f"eigenvalue {value:.3g}"
