"""The latent editor's dock content, :class:`LatentPanel`: seed, truncation, edit directions (PCA or SeFa),
style mixing, interpolation playback and export, projection of a photo, and latent files. Every change
renders off the UI thread through a :class:`~desktop.workers.LatestWorker` (the latest request wins, stale
results are dropped); the panel emits :attr:`LatentPanel.image_ready` with each image to show.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.files import IMAGE_FILTER
from desktop.latent.controls import MAX_SEED, LayerRange, StrengthSlider, _seed_box
from desktop.latent.render import EditState, Rendered, interpolation_frames, render
from desktop.wheel_scroll import scroll_with_wheel
from desktop.workers import LatestWorker, Worker, WorkResult, error_message

DIRECTION_COUNT = 5
PSI_MAX = 1.5
PSI_STEPS = 100
DEFAULT_PSI = 0.7
PCA_SAMPLES = 10_000
METHODS = (("PCA (GANSpace)", "pca"), ("SeFa", "sefa"))
DEFAULT_FRAMES = 24
ANIMATION_FPS = 12
DEFAULT_PROJECTION_STEPS = 200

class LatentPanel(QWidget):
    """Seed, truncation, directions, mixing, interpolation, projection and latent files for a StyleGAN2 model.

    Signals:
        image_ready(ndarray, float): an RGB uint8 image to show (a render or an animation frame) and the
            milliseconds it took (0 for animation frames).
        message(str): a short status line for the window.
        busy_changed(): a background job (directions, projection, export) started or ended.
    """

    image_ready = Signal(object, float)
    message = Signal(str)
    busy_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self._latent: Any = None  # the engine.families.stylegan2.latent module, once a latent model is loaded
        self._imageio: Any = None  # engine.core.imageio
        self._base: Any = None  # a Latent (projected or loaded) the edits start from; None: the seed
        self._base_name = ""
        # where file dialogs start, given a suggested file name (the window's: the project's folder once saved)
        self.start_folder: Callable[[str], str] = lambda name="": name
        self._directions: dict[str, Any] = {}
        self._directions_call: Worker | None = None
        self._shown_id = 0
        self.shown: Rendered | None = None  # the newest render shown
        self.frames: list[np.ndarray] = []
        self._frames_key: tuple | None = None
        self._frame_index = 0
        self._frames_call: Worker | None = None
        self._export_call: Worker | None = None
        self.projection: Worker | None = None
        self.last_projection_event: Any = None
        self.renders_done = 0
        self.worker = LatestWorker(self, name="ganvas-latent-render")
        self.worker.result_ready.connect(self._on_rendered)
        self.worker.failed.connect(self._on_render_failed)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(round(1000 / ANIMATION_FPS))
        self.play_timer.timeout.connect(self._next_frame)
        self._build()
        self.set_session(None)

    # --- building ---------------------------------------------------------------------------------
    def _build(self) -> None:
        content = QWidget(self)
        column = QVBoxLayout(content)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self._latent_group(content))
        column.addWidget(self._directions_group(content))
        column.addWidget(self._mixing_group(content))
        column.addWidget(self._interpolation_group(content))
        column.addWidget(self._projection_group(content))
        column.addWidget(self._files_group(content))
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll_with_wheel(scroll)  # the wheel scrolls the dock, not the slider under the cursor
        self.scroll = scroll
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._content = content

    def _latent_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Latent", parent)
        self.base_label = QLabel(group)
        self.base_label.setWordWrap(True)
        self.seed_box = _seed_box(group, 0)
        self.seed_box.setToolTip("The seed of the latent z; changing it starts from that seed again")
        self.random_button = QPushButton("Random", group)
        self.random_button.setToolTip("A random seed")
        self.psi_slider = StrengthSlider("", 0.0, PSI_MAX, PSI_STEPS, "{:.2f}", group)
        self.psi_slider.slider.setPageStep(10)
        self.psi_slider.set_value(DEFAULT_PSI, emit=False)
        self.psi_slider.setToolTip("Truncation psi: 0 is the average face of the model, 1 the plain sample, "
                                   "above 1 exaggerates it")
        self.cutoff_box = QSpinBox(group)
        self.cutoff_box.setToolTip("Truncate only style layers below this one (the last value: all layers)")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_box, 1)
        seed_row.addWidget(self.random_button)
        form = QFormLayout(group)
        form.addRow(self.base_label)
        form.addRow("Seed:", seed_row)
        form.addRow("Truncation:", self.psi_slider)
        form.addRow("Truncate layers <", self.cutoff_box)
        self.seed_box.valueChanged.connect(self._seed_changed)
        self.random_button.clicked.connect(self.random_seed)
        self.psi_slider.value_changed.connect(self._control_changed)
        self.cutoff_box.valueChanged.connect(self._control_changed)
        return group

    def _directions_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Edit directions", parent)
        self.method_combo = QComboBox(group)
        for text, method in METHODS:
            self.method_combo.addItem(text, method)
        self.method_combo.setToolTip("PCA of sampled w (GANSpace) or the generator's own style weights (SeFa)")
        self.directions_status = QLabel(group)
        self.direction_sliders = [StrengthSlider(f"{i + 1}", parent=group) for i in range(DIRECTION_COUNT)]
        self.edit_layers = LayerRange(group)
        self.edit_layers.setToolTip("The style layers the directions move (low: pose and shape, high: colour)")
        self.reset_button = QPushButton("Reset edits", group)
        form = QFormLayout(group)
        form.addRow("Method:", self.method_combo)
        form.addRow(self.directions_status)
        for slider in self.direction_sliders:
            form.addRow(slider)
            slider.value_changed.connect(self._control_changed)
        form.addRow("Layers:", self.edit_layers)
        form.addRow(self.reset_button)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.edit_layers.changed.connect(self._control_changed)
        self.reset_button.clicked.connect(self.reset_edits)
        return group

    def _mixing_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Style mixing", parent)
        group.setCheckable(True)
        group.setChecked(False)
        group.setToolTip("Take the chosen style layers from a second seed")
        self.mix_group = group
        self.mix_seed_box = _seed_box(group, 1)
        self.mix_layers = LayerRange(group)
        form = QFormLayout(group)
        form.addRow("Second seed:", self.mix_seed_box)
        form.addRow("Its layers:", self.mix_layers)
        group.toggled.connect(self._control_changed)
        self.mix_seed_box.valueChanged.connect(self._control_changed)
        self.mix_layers.changed.connect(self._control_changed)
        return group

    def _interpolation_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Interpolation", parent)
        self.target_seed_box = _seed_box(group, 1)
        self.target_seed_box.setToolTip("Interpolate from the image shown to this seed")
        self.frames_box = QSpinBox(group)
        self.frames_box.setRange(2, 600)
        self.frames_box.setValue(DEFAULT_FRAMES)
        self.loop_box = QCheckBox("and back", group)
        self.loop_box.setChecked(True)
        self.loop_box.setToolTip("Go back to the start too, so the animation loops smoothly")
        self.play_button = QPushButton("Play", group)
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play the interpolation in the output view")
        self.export_animation_button = QPushButton("Export GIF/MP4...", group)
        frames_row = QHBoxLayout()
        frames_row.addWidget(self.frames_box, 1)
        frames_row.addWidget(self.loop_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.export_animation_button)
        form = QFormLayout(group)
        form.addRow("To seed:", self.target_seed_box)
        form.addRow("Frames:", frames_row)
        form.addRow(buttons)
        self.play_button.toggled.connect(self._play_toggled)
        self.export_animation_button.clicked.connect(self.export_animation)
        return group

    def _projection_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Projection", parent)
        self.project_button = QPushButton("Project a photo...", group)
        self.project_button.setToolTip("Find the latent of a photo; the result becomes the latent you edit")
        self.cancel_button = QPushButton("Cancel", group)
        self.cancel_button.setEnabled(False)
        self.steps_box = QSpinBox(group)
        self.steps_box.setRange(1, 5000)
        self.steps_box.setValue(DEFAULT_PROJECTION_STEPS)
        self.steps_box.setSuffix(" steps")
        self.space_combo = QComboBox(group)
        self.space_combo.addItem("W (one vector)", "w")
        self.space_combo.addItem("W+ (per layer)", "w+")
        self.space_combo.setToolTip("W+ fits photos more closely but edits less cleanly")
        self.progress = QProgressBar(group)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")  # idle: an empty bar, not "0 / 1"
        options = QHBoxLayout()
        options.addWidget(self.steps_box, 1)
        options.addWidget(self.space_combo, 1)
        self.lpips_check = QCheckBox("LPIPS", group)
        self.lpips_check.setEnabled(False)
        self.lpips_check.setToolTip("Add the LPIPS perceptual distance to the loss (needs VGG16 weights)")
        self.lpips_button = QPushButton("VGG16 weights...", group)
        self.lpips_button.setToolTip("A VGG16 state dict such as torchvision's vgg16-397923af.pth; Ganvas "
                                     "downloads nothing")
        self.lpips_backbone: str | None = None
        lpips_row = QHBoxLayout()
        lpips_row.addWidget(self.lpips_check)
        lpips_row.addWidget(self.lpips_button, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.project_button, 1)
        buttons.addWidget(self.cancel_button)
        form = QFormLayout(group)
        form.addRow(options)
        form.addRow(lpips_row)
        form.addRow(buttons)
        form.addRow(self.progress)
        self.project_button.clicked.connect(self.project_photo)
        self.cancel_button.clicked.connect(self.cancel_projection)
        self.lpips_button.clicked.connect(self.choose_lpips_weights)
        return group

    def choose_lpips_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "VGG16 weights for LPIPS", self.start_folder(),
                                              "PyTorch weights (*.pth *.pt *.safetensors);;All files (*)")
        if path:
            self.set_lpips_weights(path)

    def set_lpips_weights(self, path: str | None) -> None:
        """Use this VGG16 file for LPIPS in the next projections (None: no LPIPS); it is read when one starts."""
        self.lpips_backbone = path
        self.lpips_check.setEnabled(path is not None)
        self.lpips_check.setChecked(path is not None)
        self.lpips_button.setText(Path(path).name if path else "VGG16 weights...")

    def _files_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Files", parent)
        self.save_latent_button = QPushButton("Save latent...", group)
        self.load_latent_button = QPushButton("Load latent...", group)
        self.export_image_button = QPushButton("Export PNG...", group)
        row = QHBoxLayout(group)
        for button in (self.save_latent_button, self.load_latent_button, self.export_image_button):
            row.addWidget(button)
        self.save_latent_button.clicked.connect(self.save_latent)
        self.load_latent_button.clicked.connect(self.load_latent)
        self.export_image_button.clicked.connect(self.export_image)
        return group

    # --- session ----------------------------------------------------------------------------------
    def set_session(self, session: Any, imageio: Any = None) -> None:
        """Edit ``session`` (a LatentSession; None disables the panel). Directions are computed once for it."""
        self.stop_playback()
        self.cancel_projection()
        self.session = session
        self._directions = {}
        self._directions_call = None
        self._base, self._base_name = None, ""
        self.shown = None
        self.frames, self._frames_key = [], None
        self._shown_id = self.worker.last_request_id
        self.worker.cancel_pending()
        self._content.setEnabled(session is not None)
        if session is None:
            self.base_label.setText("Load a StyleGAN2 model to edit its latents.")
            self.directions_status.setText("")
            return
        self._latent = importlib.import_module("engine.families.stylegan2.latent")  # already imported by the loading thread
        self._imageio = imageio or importlib.import_module("engine.core.imageio")
        num_ws = session.num_ws
        self.cutoff_box.blockSignals(True)
        self.cutoff_box.setRange(1, num_ws)
        self.cutoff_box.setValue(num_ws)
        self.cutoff_box.blockSignals(False)
        groups = self._latent.layer_groups(num_ws)
        resolutions = [self._latent.layer_resolution(i, num_ws) for i in range(num_ws)]
        self.edit_layers.set_layers(num_ws, 0, num_ws - 1, groups, resolutions)
        self.mix_layers.set_layers(num_ws, num_ws // 2, num_ws - 1, groups, resolutions)
        self.reset_edits(render=False)
        self._update_base_label()
        self._compute_directions()
        self.request_render()

    def minimum_content_width(self) -> int:
        """The width at which every row fits without a horizontal scroll bar."""
        scroll_bar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        return self._content.minimumSizeHint().width() + scroll_bar + 8

    @property
    def directions(self) -> Any:
        """The current method's directions (None while they are being computed)."""
        return self._directions.get(self.method_combo.currentData())

    def is_busy(self) -> bool:
        """A background job is running (directions, interpolation frames, export or projection)."""
        return any(call is not None for call in (self._directions_call, self._frames_call, self._export_call)) \
            or self.projection is not None

    # --- controls ---------------------------------------------------------------------------------
    def state(self) -> EditState:
        """What the controls say now."""
        cutoff = self.cutoff_box.value()
        num_ws = self.session.num_ws if self.session is not None else cutoff
        return EditState(
            seed=self.seed_box.value(),
            psi=self.psi_slider.value(),
            cutoff=None if cutoff >= num_ws else cutoff,
            strengths=tuple(slider.value() for slider in self.direction_sliders),
            edit_layers=self.edit_layers.half_open(),
            mix_seed=self.mix_seed_box.value() if self.mix_group.isChecked() else None,
            mix_layers=self.mix_layers.half_open(),
        )

    def random_seed(self) -> None:
        self.seed_box.setValue(random.randint(0, MAX_SEED))

    def reset_edits(self, render: bool = True) -> None:
        """All direction strengths back to 0."""
        for slider in self.direction_sliders:
            slider.set_value(0.0, emit=False)
        if render:
            self._control_changed()

    def _seed_changed(self) -> None:
        self._base, self._base_name = None, ""  # a new seed starts from that seed
        self._update_base_label()
        self._control_changed()

    def _control_changed(self, *_: Any) -> None:
        self.stop_playback()
        self.request_render()

    def _set_controls_quietly(self, psi: float) -> None:
        """Truncation ``psi``, no mixing, no edits: what a loaded or projected latent is shown with."""
        self.psi_slider.set_value(psi, emit=False)
        self.mix_group.blockSignals(True)
        self.mix_group.setChecked(False)
        self.mix_group.blockSignals(False)
        self.reset_edits(render=False)

    def _update_base_label(self) -> None:
        if self._base is None:
            self.base_label.setText("Starting from the seed below.")
        else:
            self.base_label.setText(f"Starting from {self._base_name}; change the seed to leave it.")

    def _set_base(self, latent: Any, name: str) -> None:
        self.stop_playback()
        self._base, self._base_name = latent, name
        self._set_controls_quietly(1.0)
        self._update_base_label()
        self.request_render()

    # --- rendering --------------------------------------------------------------------------------
    def request_render(self) -> int:
        """Render what the controls say (latest request wins); returns the request id (-1 without a model)."""
        if self.session is None:
            return -1
        session, state, base, directions = self.session, self.state(), self._base, self.directions
        return self.worker.submit(lambda: render(session, state, base, directions), tag=session)

    def _on_rendered(self, result: WorkResult) -> None:
        if result.tag is not self.session or result.request_id <= self._shown_id:
            return  # stale: an older request, or one for a model no longer loaded
        self._shown_id = result.request_id
        self.shown = result.value
        self.renders_done += 1
        if not self.play_timer.isActive():
            self.image_ready.emit(self.shown.image, result.elapsed_ms)

    def _on_render_failed(self, request_id: int, message: str) -> None:
        self.message.emit(f"Render failed: {message}")

    def shown_image(self) -> np.ndarray | None:
        return None if self.shown is None else self.shown.image

    # --- directions -------------------------------------------------------------------------------
    def _method_changed(self) -> None:
        self.reset_edits(render=False)
        self._compute_directions()
        self._control_changed()

    def _compute_directions(self) -> None:
        method = self.method_combo.currentData()
        if self.session is None or method in self._directions or self._directions_call is not None:
            self._show_directions_state()
            return
        session = self.session
        k = min(DIRECTION_COUNT, session.w_dim)

        def compute() -> tuple[Any, str, Any]:  # read from the file beside the checkpoint when it is there
            return session, method, session.saved_or_new_directions(method, k, samples=PCA_SAMPLES)

        self._directions_call = Worker.call(compute, "ganvas-latent-directions", self)
        self._directions_call.returned.connect(self._on_directions)
        self._directions_call.errored.connect(self._on_directions_failed)
        self._directions_call.start()
        self._show_directions_state()
        self.busy_changed.emit()

    def _on_directions(self, result: tuple[Any, str, Any]) -> None:
        session, method, directions = result
        self._directions_call = None
        self.busy_changed.emit()
        if session is not self.session:
            return
        self._directions[method] = directions
        if self.method_combo.currentData() not in self._directions:
            self._compute_directions()  # the user switched method meanwhile
        self._show_directions_state()
        if any(self.state().strengths):
            self.request_render()

    def _on_directions_failed(self, exc: BaseException) -> None:
        self._directions_call = None
        self.busy_changed.emit()
        self.directions_status.setText(f"Directions failed: {error_message(exc)}")

    def _show_directions_state(self) -> None:
        directions = self.directions
        ready = directions is not None
        for i, slider in enumerate(self.direction_sliders):
            slider.setEnabled(ready and i < len(directions))
            if ready and i < len(directions):
                slider.setToolTip(f"Direction {i + 1}: {self._value_text(directions, i)}")
        if self.session is None:
            text = ""
        elif ready:
            text = f"{len(directions)} directions, strongest first"
        else:
            text = "Computing directions..."
        self.directions_status.setText(text)

    @staticmethod
    def _value_text(directions: Any, index: int) -> str:
        value = float(directions.values[index])
        if directions.method == "pca":
            return f"{value * 100:.1f}% of the variance of w"
        return f"eigenvalue {value:.3g}"

    # --- interpolation ----------------------------------------------------------------------------
    def _interpolation_key(self) -> tuple:
        return (self._shown_id, self.target_seed_box.value(), self.frames_box.value(), self.loop_box.isChecked())

    def _frames_job(self) -> Callable[[], list[np.ndarray]] | None:
        if self.session is None or self.shown is None:
            return None
        session, start = self.session, self.shown
        seed_b, count, loop = self.target_seed_box.value(), self.frames_box.value(), self.loop_box.isChecked()
        return lambda: interpolation_frames(session, start, seed_b, count, loop)

    def _play_toggled(self, on: bool) -> None:
        if not on:
            self.stop_playback()
            return
        if self.frames and self._frames_key == self._interpolation_key():
            self._start_timer()
            return
        job = self._frames_job()
        if job is None or self._frames_call is not None:
            self.play_button.setChecked(job is not None)
            return
        key = self._interpolation_key()
        self._frames_call = Worker.call(lambda: (key, job()), "ganvas-latent-frames", self)
        self._frames_call.returned.connect(self._on_frames)
        self._frames_call.errored.connect(self._on_frames_failed)
        self._frames_call.start()
        self.play_button.setText("Preparing...")
        self.busy_changed.emit()

    def _on_frames(self, result: tuple[tuple, list[np.ndarray]]) -> None:
        self._frames_call = None
        self.busy_changed.emit()
        self.frames, self._frames_key = result[1], result[0]
        if self.play_button.isChecked() and self._frames_key == self._interpolation_key():
            self._start_timer()
        else:
            self.play_button.setText("Play")

    def _on_frames_failed(self, exc: BaseException) -> None:
        self._frames_call = None
        self.busy_changed.emit()
        self.stop_playback()
        self.message.emit(f"Interpolation failed: {error_message(exc)}")

    def _start_timer(self) -> None:
        self._frame_index = 0
        self.play_button.setText("Stop")
        self.play_timer.start()
        self._next_frame()

    def _next_frame(self) -> None:
        if not self.frames:
            self.stop_playback()
            return
        self.image_ready.emit(self.frames[self._frame_index % len(self.frames)], 0.0)
        self._frame_index += 1

    def is_playing(self) -> bool:
        return self.play_timer.isActive()

    def stop_playback(self) -> None:
        """Stop the animation and show the current image again."""
        was_playing = self.play_timer.isActive()
        self.play_timer.stop()
        self.play_button.blockSignals(True)
        self.play_button.setChecked(False)
        self.play_button.blockSignals(False)
        self.play_button.setText("Play")
        if was_playing and self.shown is not None:
            self.image_ready.emit(self.shown.image, 0.0)

    def export_animation(self) -> None:
        """Ask for a .gif or .mp4 path, then compute the frames (unless playing them) and write it off-thread."""
        job = self._frames_job()
        if job is None or self._export_call is not None:
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export interpolation",
                                                   self.start_folder("interpolation.gif"),
                                                   "GIF animation (*.gif);;MP4 video (*.mp4)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".gif", ".mp4"):
            path += ".mp4" if "mp4" in chosen else ".gif"
        frames = self.frames if self.frames and self._frames_key == self._interpolation_key() else None
        write = self._latent.write_animation

        def export() -> str:
            return str(write(path, frames if frames is not None else job(), fps=ANIMATION_FPS))

        self._export_call = Worker.call(export, "ganvas-latent-export", self)
        self._export_call.returned.connect(self._on_exported)
        self._export_call.errored.connect(self._on_export_failed)
        self._export_call.start()
        self.export_animation_button.setEnabled(False)
        self.message.emit(f"Writing {path}...")
        self.busy_changed.emit()

    def _on_exported(self, path: str) -> None:
        self._export_call = None
        self.export_animation_button.setEnabled(True)
        self.busy_changed.emit()
        self.message.emit(f"Saved {path}")

    def _on_export_failed(self, exc: BaseException) -> None:
        self._export_call = None
        self.export_animation_button.setEnabled(True)
        self.busy_changed.emit()
        QMessageBox.critical(self, "Cannot export the animation", error_message(exc))

    # --- projection -------------------------------------------------------------------------------
    def project_photo(self) -> None:
        """Ask for a photo and project it."""
        if self.session is None or self.projection is not None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Project a photo", self.start_folder(), IMAGE_FILTER)
        if not path:
            return
        try:
            image = self._imageio.read_image(path)
        except Exception as exc:  # a GanvasError for unreadable images; anything else is shown the same way
            QMessageBox.critical(self, "Cannot open the photo", error_message(exc))
            return
        self.start_projection(image, Path(path).name)

    def start_projection(self, image: np.ndarray, name: str = "photo") -> Worker | None:
        """Project ``image`` (RGB uint8) off the UI thread with the chosen steps and space."""
        if self.session is None or self.projection is not None:
            return None
        session, steps, space = self.session, self.steps_box.value(), self.space_combo.currentData()
        backbone = self.lpips_backbone if self.lpips_check.isChecked() else None
        self.stop_playback()

        def run(should_stop: Callable[[], bool]) -> Any:
            # The weights load in the job's thread; a bad file fails the job with its name in the message.
            perceptual = importlib.import_module("engine.infer.perceptual").load_lpips(backbone) if backbone else None
            return session.project(image, steps=steps, space=space, should_stop=should_stop, perceptual=perceptual)

        job = Worker.generator(run, "ganvas-latent-projection", self)
        job.setProperty("photo", name)
        job.yielded.connect(self._on_projection_progress)
        job.returned.connect(self._on_projection_finished)
        job.errored.connect(self._on_projection_failed)
        self.projection = job
        self.last_projection_event = None
        self.progress.setRange(0, steps)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.project_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.message.emit(f"Projecting {name}...")
        self.busy_changed.emit()
        return job.start()

    def cancel_projection(self) -> None:
        """Ask the projection to stop at its next step; its result is discarded."""
        if self.projection is not None:
            self.projection.stop()
            self.cancel_button.setEnabled(False)

    def _on_projection_progress(self, event: Any) -> None:
        if self.sender() is not self.projection:
            return
        self.last_projection_event = event
        self.progress.setValue(event.step)
        if event.kind == "step":
            self.progress.setFormat(f"%v / %m   loss {event.loss:.3f}")

    def _on_projection_finished(self, event: Any) -> None:
        job = self.sender()
        if job is not self.projection:
            return
        self._end_projection()
        if event is None or event.latent is None:
            return
        name = job.property("photo")
        if job.should_stop():
            self.message.emit(f"Projection of {name} cancelled at step {event.step} of {event.total}")
            return
        self.message.emit(f"Projected {name} in {event.step} steps (loss {event.loss:.3f})")
        self._set_base(event.latent, f"projected {name}")

    def _on_projection_failed(self, exc: BaseException) -> None:
        if self.sender() is not self.projection:
            return
        self._end_projection()
        QMessageBox.critical(self, "Projection failed", error_message(exc))

    def _end_projection(self) -> None:
        self.projection = None
        self.project_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("%v / %m" if self.progress.value() else "")
        self.busy_changed.emit()

    # --- files ------------------------------------------------------------------------------------
    def current_latent(self) -> Any:
        """The shown image's latent (a ``engine.families.stylegan2.latent.Latent``, W+ with every edit applied), or None."""
        if self.session is None or self.shown is None:
            return None
        state = self.shown.state
        provenance = {**self.session.provenance(), "seed": state.seed, "psi": state.psi, "cutoff": state.cutoff,
                      "directions": self.method_combo.currentData() if any(state.strengths) else None,
                      "strengths": list(state.strengths), "edit_layers": list(state.edit_layers),
                      "mix_seed": state.mix_seed, "mix_layers": list(state.mix_layers), "base": self._base_name}
        seed = state.seed if self.shown.base is None else None
        return self._latent.Latent(self.shown.ws.clone(), "w+", seed, state.psi, self.shown.noise, provenance)

    def save_latent(self, path: str | None = None) -> Path | None:
        latent = self.current_latent()
        if latent is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save latent",
                                                  self.start_folder(f"seed{self.seed_box.value()}.npz"),
                                                  "Latents (*.npz)")
            if not path:
                return None
        path = path if Path(path).suffix else path + ".npz"
        try:
            written = self._latent.save_latent(path, latent)
        except Exception as exc:  # GanvasError (wrong suffix, disk full): a message, not a crash
            QMessageBox.critical(self, "Cannot save the latent", error_message(exc))
            return None
        self.message.emit(f"Saved {written}")
        return written

    def load_latent(self, path: str | None = None) -> bool:
        if self.session is None:
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load latent", self.start_folder(), "Latents (*.npz)")
            if not path:
                return False
        try:
            latent = self._latent.load_latent(path, self.session.num_ws, self.session.w_dim)
        except Exception as exc:  # CheckpointError: not a latent, or one of another generator
            QMessageBox.critical(self, "Cannot load the latent", error_message(exc))
            return False
        self._set_base(latent, f"latent {Path(path).name}")
        return True

    def export_image(self, path: str | None = None) -> Path | None:
        image = self.shown_image()
        if image is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export image",
                                                  self.start_folder(f"seed{self.seed_box.value()}.png"),
                                                  "PNG images (*.png)")
            if not path:
                return None
        path = path if Path(path).suffix else path + ".png"
        try:
            self._imageio.write_image(path, image)
        except Exception as exc:  # GanvasError: a message, not a crash
            QMessageBox.critical(self, "Cannot save the image", error_message(exc))
            return None
        self.message.emit(f"Saved {path}")
        return Path(path)

    def shutdown(self) -> None:
        """Stop the render thread and any projection (window closing)."""
        self.stop_playback()
        self.cancel_projection()
        self.worker.stop()
