"""What the latent editor's sections share: :class:`LatentModel`, a QObject with signals and no widgets.

It holds the loaded LatentSession, the latent the edits start from (the seed, or a loaded or projected
latent), the current edit directions, the newest image shown, and the render worker: every render runs off
the UI thread on a :class:`~desktop.workers.LatestWorker` (the latest request wins, stale results are dropped).
Each section of the panel observes it and changes it; none talks to another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.latent.render import EditState, Rendered, render
from desktop.workers import LatestWorker, WorkResult
from engine import api


class LatentModel(QObject):
    """The latent editor's shared state.

    Signals:
        session_changed(object): a new LatentSession to edit (None: no model); sections set themselves up.
        base_changed(): the latent the edits start from changed (see :attr:`base`, :attr:`base_name`).
        latent_loaded(): a loaded or projected latent became the base: it is shown as it is (no truncation,
            mixing or edits), and the controls say so.
        image_ready(ndarray, float): an RGB uint8 image to show and the milliseconds it took (0: animation).
        message(str): a short status line.
        busy_changed(): a background job started or ended.
    """

    session_changed = Signal(object)
    base_changed = Signal()
    latent_loaded = Signal()
    image_ready = Signal(object, float)
    message = Signal(str)
    busy_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.base: Any = None  # a Latent (projected or loaded) the edits start from; None: the seed
        self.base_name = ""
        self.directions: Any = None  # the chosen method's directions (None while they are computed)
        self.directions_method = ""
        self.edit_state: EditState | None = None  # what the controls said at the newest render request
        self.shown: Rendered | None = None  # the newest render shown
        self.shown_id = 0
        self.renders_done = 0
        self.playing = False  # an animation is playing: renders are kept, not shown
        # where file dialogs start, given a suggested file name (the window's: the project's folder once saved)
        self.start_folder: Callable[..., str] = lambda name="": name
        self.worker = LatestWorker(self, name="ganvas-latent-render")
        self.worker.result_ready.connect(self._on_rendered)
        self.worker.failed.connect(self._on_render_failed)

    def set_session(self, session: Any) -> None:
        """Edit ``session`` (None: no model); what was shown or computed for the last one is forgotten."""
        self.session = session
        self.directions = None
        self.base, self.base_name = None, ""
        self.shown, self.edit_state = None, None
        self.shown_id = self.worker.last_request_id
        self.worker.cancel_pending()
        self.session_changed.emit(session)

    def style_layers(self) -> tuple[int, dict[str, tuple[int, int]], list[int]]:
        """The loaded generator's style layers: their count, their groups (coarse, middle, fine: half-open
        ranges) and the resolution each draws at."""
        num_ws = self.session.num_ws
        resolutions = [api.layer_resolution(i, num_ws) for i in range(num_ws)]
        return num_ws, api.layer_groups(num_ws), resolutions

    # --- the latent the edits start from ----------------------------------------------------------
    def start_from_seed(self) -> None:
        self.base, self.base_name = None, ""
        self.base_changed.emit()

    def start_from(self, latent: Any, name: str) -> None:
        """Edit ``latent`` (loaded or projected, described by ``name``), shown as it is."""
        self.base, self.base_name = latent, name
        self.base_changed.emit()
        self.latent_loaded.emit()

    # --- rendering --------------------------------------------------------------------------------
    def render(self, state: EditState) -> int:
        """Render ``state`` (latest request wins); returns the request id (-1 without a model)."""
        if self.session is None:
            return -1
        self.edit_state = state
        session, base, directions = self.session, self.base, self.directions
        return self.worker.submit(lambda: render(session, state, base, directions), tag=session)

    def _on_rendered(self, result: WorkResult) -> None:
        if result.tag is not self.session or result.request_id <= self.shown_id:
            return  # stale: an older request, or one for a model no longer loaded
        self.shown_id = result.request_id
        self.shown = result.value
        self.renders_done += 1
        if not self.playing:
            self.image_ready.emit(self.shown.image, result.elapsed_ms)

    def _on_render_failed(self, request_id: int, message: str) -> None:
        self.message.emit(f"Render failed: {message}")

    def shown_image(self) -> np.ndarray | None:
        return None if self.shown is None else self.shown.image

    def settled(self) -> bool:
        """The newest render request has been shown."""
        return self.shown is not None and self.shown_id == self.worker.last_request_id
