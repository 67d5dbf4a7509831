"""The latent editor's dock content, :class:`LatentPanel`: one section per feature over one shared model.

The sections (each its own small widget and module) are the seed and truncation (:mod:`~desktop.latent.seed`),
edit directions (:mod:`~desktop.latent.directions`), style mixing (:mod:`~desktop.latent.mixing`),
interpolation playback and export (:mod:`~desktop.latent.interpolation`), projection of a photo
(:mod:`~desktop.latent.projection`) and latent files (:mod:`~desktop.latent.files`). They share a
:class:`~desktop.latent.model.LatentModel` (the session, the latent the edits start from, the image shown, the
render worker) and never talk to each other: the panel composes them, reads what they say into one
:class:`~desktop.latent.render.EditState` and asks the model to render it whenever one changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from desktop.latent.directions import DirectionsSection
from desktop.latent.files import FilesSection
from desktop.latent.interpolation import InterpolationSection
from desktop.latent.mixing import MixingSection
from desktop.latent.model import LatentModel
from desktop.latent.projection import ProjectionSection
from desktop.latent.render import EditState
from desktop.latent.seed import SeedSection
from desktop.wheel_scroll import scroll_with_wheel


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
        self.model = LatentModel(self)
        content = QWidget(self)
        self.seed_section = SeedSection(self.model, content)
        self.directions_section = DirectionsSection(self.model, content)
        self.mixing_section = MixingSection(self.model, content)
        self.interpolation_section = InterpolationSection(self.model, content)
        self.projection_section = ProjectionSection(self.model, content)
        self.files_section = FilesSection(self.model, content)
        column = QVBoxLayout(content)
        column.setContentsMargins(4, 4, 4, 4)
        for section in self._sections():
            column.addWidget(section)
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
        for section in (self.seed_section, self.directions_section, self.mixing_section):
            section.changed.connect(self._control_changed)
        self.directions_section.ready.connect(self.request_render)
        self.projection_section.starting.connect(self.interpolation_section.stop_playback)
        self.model.latent_loaded.connect(self._control_changed)  # after the sections have reset themselves
        self.model.image_ready.connect(self.image_ready)
        self.model.message.connect(self.message)
        self.model.busy_changed.connect(self.busy_changed)
        self.set_session(None)

    def _sections(self) -> tuple[QWidget, ...]:
        return (self.seed_section, self.directions_section, self.mixing_section, self.interpolation_section,
                self.projection_section, self.files_section)

    # --- session ----------------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        """Edit ``session`` (a LatentSession; None disables the panel). Directions are computed once for it."""
        self.interpolation_section.stop_playback()
        self.projection_section.cancel_projection()
        self._content.setEnabled(session is not None)
        self.model.set_session(session)  # each section sets itself up for it
        self.request_render()

    @property
    def session(self) -> Any:
        return self.model.session

    @property
    def start_folder(self) -> Callable[..., str]:
        """Where file dialogs start, given a suggested file name."""
        return self.model.start_folder

    @start_folder.setter
    def start_folder(self, function: Callable[..., str]) -> None:
        self.model.start_folder = function

    @property
    def directions(self) -> Any:
        """The current method's directions (None while they are being computed)."""
        return self.model.directions

    def minimum_content_width(self) -> int:
        """The width at which every row fits without a horizontal scroll bar."""
        scroll_bar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        return self._content.minimumSizeHint().width() + scroll_bar + 8

    def is_busy(self) -> bool:
        """A background job is running (directions, interpolation frames, export or projection)."""
        return any(section.is_busy() for section in (self.directions_section, self.interpolation_section,
                                                      self.projection_section))

    # --- rendering --------------------------------------------------------------------------------
    def state(self) -> EditState:
        """What the controls say now."""
        seed, directions, mixing = self.seed_section, self.directions_section, self.mixing_section
        return EditState(seed=seed.seed(), psi=seed.psi(), cutoff=seed.cutoff(), strengths=directions.strengths(),
                         edit_layers=directions.layers.half_open(), mix_seed=mixing.mix_seed(),
                         mix_layers=mixing.layers.half_open())

    def request_render(self) -> int:
        """Render what the controls say (latest request wins); returns the request id (-1 without a model)."""
        return self.model.render(self.state())

    def _control_changed(self) -> None:
        self.interpolation_section.stop_playback()
        self.request_render()

    def shown_image(self) -> np.ndarray | None:
        return self.model.shown_image()

    def shutdown(self) -> None:
        """Stop the render thread and any projection (window closing)."""
        self.interpolation_section.stop_playback()
        self.projection_section.cancel_projection()
        self.model.worker.stop()
