"""The latent editor's Interpolation section: play a walk from the image shown to another seed, or export it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.latent.controls import seed_box
from desktop.latent.model import LatentModel
from desktop.latent.render import interpolation_frames
from desktop.workers import Worker, error_message
from engine import api

DEFAULT_FRAMES = 24
ANIMATION_FPS = 12


class InterpolationSection(QGroupBox):
    """Frames from the image shown to a target seed (and back), played in the output view or written as a
    GIF or MP4; the frames are computed off the UI thread and kept while nothing they depend on changes."""

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Interpolation", parent)
        self.model = model
        self.frames: list[np.ndarray] = []
        self._frames_key: tuple | None = None
        self._frame_index = 0
        self._frames_call: Worker | None = None
        self._export_call: Worker | None = None
        self.target_seed_box = seed_box(self, 1)
        self.target_seed_box.setToolTip("Interpolate from the image shown to this seed")
        self.frames_box = QSpinBox(self)
        self.frames_box.setRange(2, 600)
        self.frames_box.setValue(DEFAULT_FRAMES)
        self.loop_box = QCheckBox("and back", self)
        self.loop_box.setChecked(True)
        self.loop_box.setToolTip("Go back to the start too, so the animation loops smoothly")
        self.play_button = QPushButton("Play", self)
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play the interpolation in the output view")
        self.export_animation_button = QPushButton("Export GIF/MP4...", self)
        frames_row = QHBoxLayout()
        frames_row.addWidget(self.frames_box, 1)
        frames_row.addWidget(self.loop_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.export_animation_button)
        form = QFormLayout(self)
        form.addRow("To seed:", self.target_seed_box)
        form.addRow("Frames:", frames_row)
        form.addRow(buttons)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(round(1000 / ANIMATION_FPS))
        self.play_timer.timeout.connect(self._next_frame)
        self.play_button.toggled.connect(self._play_toggled)
        self.export_animation_button.clicked.connect(self.export_animation)
        model.session_changed.connect(self._forget_frames)

    def is_busy(self) -> bool:
        return self._frames_call is not None or self._export_call is not None

    def is_playing(self) -> bool:
        return self.play_timer.isActive()

    def stop_playback(self) -> None:
        """Stop the animation and show the current image again."""
        was_playing = self.play_timer.isActive()
        self.play_timer.stop()
        self.model.playing = False
        self.play_button.blockSignals(True)
        self.play_button.setChecked(False)
        self.play_button.blockSignals(False)
        self.play_button.setText("Play")
        if was_playing and self.model.shown is not None:
            self.model.image_ready.emit(self.model.shown.image, 0.0)

    def _forget_frames(self, _session: Any) -> None:
        self.frames, self._frames_key = [], None

    def _key(self) -> tuple:
        return (self.model.shown_id, self.target_seed_box.value(), self.frames_box.value(), self.loop_box.isChecked())

    def _frames_job(self) -> Callable[[], list[np.ndarray]] | None:
        if self.model.session is None or self.model.shown is None:
            return None
        session, start = self.model.session, self.model.shown
        seed_b, count, loop = self.target_seed_box.value(), self.frames_box.value(), self.loop_box.isChecked()
        return lambda: interpolation_frames(session, start, seed_b, count, loop)

    def _play_toggled(self, on: bool) -> None:
        if not on:
            self.stop_playback()
            return
        if self.frames and self._frames_key == self._key():
            self._start_timer()
            return
        job = self._frames_job()
        if job is None or self._frames_call is not None:
            self.play_button.setChecked(job is not None)
            return
        key = self._key()
        self._frames_call = Worker.call(lambda: (key, job()), "ganvas-latent-frames", self)
        self._frames_call.returned.connect(self._on_frames)
        self._frames_call.errored.connect(self._on_frames_failed)
        self._frames_call.start()
        self.play_button.setText("Preparing...")
        self.model.busy_changed.emit()

    def _on_frames(self, result: tuple[tuple, list[np.ndarray]]) -> None:
        self._frames_call = None
        self.model.busy_changed.emit()
        self.frames, self._frames_key = result[1], result[0]
        if self.play_button.isChecked() and self._frames_key == self._key():
            self._start_timer()
        else:
            self.play_button.setText("Play")

    def _on_frames_failed(self, exc: BaseException) -> None:
        self._frames_call = None
        self.model.busy_changed.emit()
        self.stop_playback()
        self.model.message.emit(f"Interpolation failed: {error_message(exc)}")

    def _start_timer(self) -> None:
        self._frame_index = 0
        self.play_button.setText("Stop")
        self.play_timer.start()
        self.model.playing = True
        self._next_frame()

    def _next_frame(self) -> None:
        if not self.frames:
            self.stop_playback()
            return
        self.model.image_ready.emit(self.frames[self._frame_index % len(self.frames)], 0.0)
        self._frame_index += 1

    def export_animation(self) -> None:
        """Ask for a .gif or .mp4 path, then compute the frames (unless playing them) and write it off-thread."""
        job = self._frames_job()
        if job is None or self._export_call is not None:
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export interpolation",
                                                   self.model.start_folder("interpolation.gif"),
                                                   "GIF animation (*.gif);;MP4 video (*.mp4)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".gif", ".mp4"):
            path += ".mp4" if "mp4" in chosen else ".gif"
        frames = self.frames if self.frames and self._frames_key == self._key() else None
        write = api.write_animation

        def export() -> str:
            return str(write(path, frames if frames is not None else job(), fps=ANIMATION_FPS))

        self._export_call = Worker.call(export, "ganvas-latent-export", self)
        self._export_call.returned.connect(self._on_exported)
        self._export_call.errored.connect(self._on_export_failed)
        self._export_call.start()
        self.export_animation_button.setEnabled(False)
        self.model.message.emit(f"Writing {path}...")
        self.model.busy_changed.emit()

    def _on_exported(self, path: str) -> None:
        self._export_call = None
        self.export_animation_button.setEnabled(True)
        self.model.busy_changed.emit()
        self.model.message.emit(f"Saved {path}")

    def _on_export_failed(self, exc: BaseException) -> None:
        self._export_call = None
        self.export_animation_button.setEnabled(True)
        self.model.busy_changed.emit()
        QMessageBox.critical(self, "Cannot export the animation", error_message(exc))
