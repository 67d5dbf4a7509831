""":class:`LatentEditor` wires the panel to the shared :class:`~desktop.state.AppState` and the output view: it
owns the dock and, while a latent model is loaded, shows the panel's images in the output (the window puts
the canvas, the drawing tools and the Style and Palette docks away meanwhile: a StyleGAN2 model has no
drawn input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QSize
from PySide6.QtWidgets import (
    QDockWidget,
    QWidget,
)

from desktop.latent.panel import LatentPanel
from engine import api

if TYPE_CHECKING:
    from desktop.output_view import OutputPanel
    from desktop.state import AppState


class LatentEditor(QObject):
    """The latent editor dock, and the output view while a latent model is loaded.

    A StyleGAN2 model generates from a latent, not from a drawing: while one is loaded the window puts the
    canvas, the drawing tools and the Style and Palette docks away, and the editor shows its images in the
    output view through the shared state, fitted to the view (drawing would change nothing, and an empty canvas
    beside the image would only suggest it does).

    Args:
        state: the shared state (its engine, output, messages and start folder).
        output_panel: the output view and its actions, which the editor drives while active.
        place: docks a widget in the window and returns the dock.
    """

    def __init__(self, state: AppState, output_panel: OutputPanel, place: Callable[[QWidget], QDockWidget],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.output_panel = state, output_panel
        self.panel = LatentPanel()
        self.panel.start_folder = state.start_folder  # file dialogs start in the project's folder
        self.dock = place(self.panel)
        self.active = False
        self._pending_latents: dict[str, np.ndarray] | None = None  # a project's latent waiting for its model
        self.panel.image_ready.connect(self._show_image)
        self.panel.message.connect(self._show_message)

    def activate(self, session: Any) -> None:
        """Edit ``session`` (a LatentSession) and show its images (a project's latent waiting for it first)."""
        view = self.output_panel.view
        if not self.active:
            self.active = True
            view.installEventFilter(self)
        self.state.set_output(None)
        view.set_message("Generating...")
        self._fit_output(session.resolution)
        self._set_output_actions(False)
        self.panel.set_session(session)
        self._restore_pending()

    # --- projects ---------------------------------------------------------------------------------
    def project_latents(self) -> dict[str, np.ndarray]:
        """The shown image's latent as a project stores it (``ws`` and any noise maps); empty when no latent
        model is shown."""
        latent = self.panel.files_section.current_latent() if self.active else None
        return {} if latent is None else api.latent_arrays(latent)

    def restore_from_project(self, project: Any, model_loading: bool = False) -> None:
        """Show ``project``'s latent on its StyleGAN2 model: now if that model is shown, else once
        ``model_loading`` (the project's model, being loaded) arrives."""
        self._pending_latents = dict(project.latents) or None
        if self.active and not model_loading:
            self._restore_pending()

    def _restore_pending(self) -> None:
        arrays, self._pending_latents = self._pending_latents, None
        session = self.panel.session
        if not arrays or session is None:
            return
        try:
            latent = api.latent_from_arrays(arrays, session.num_ws, session.w_dim)
        except api.GanvasError as exc:  # a latent of another generator: the seed stays
            self.state.notify(f"The project's latent does not fit this model ({exc})", 8000)
            return
        self.panel.model.start_from(latent, "the project's latent")

    def deactivate(self) -> None:
        """Back to drawing: the editor forgets its model and the output compares with the drawing again."""
        if not self.active:
            return
        self.active = False
        self._pending_latents = None
        self.panel.set_session(None)
        self.output_panel.view.removeEventFilter(self)
        self.output_panel.set_compare_available(True)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.refit()
        return False

    def refit(self, *_: Any) -> None:
        """Fit the image to the view again (it was resized, or the canvas moved the view)."""
        if self.active and self.panel.session is not None:
            self._fit_output(self.panel.session.resolution)

    def _fit_output(self, resolution: int) -> None:
        """Show the image as large as the output view allows, centred (whole multiples when enlarging)."""
        view = self.output_panel.view
        side = max(1, min(view.width(), view.height()) - 16)
        zoom = side / resolution
        zoom = float(int(zoom)) if zoom >= 1 else zoom
        offset = QPointF((view.width() - resolution * zoom) / 2, (view.height() - resolution * zoom) / 2)
        view.set_view(zoom, offset, QSize(resolution, resolution))

    def _set_output_actions(self, enabled: bool) -> None:
        output = self.output_panel
        output.set_actions_enabled(enabled)
        output.use_button.setEnabled(False)  # there is no drawing to load it into
        output.set_compare_available(False)

    def _show_image(self, image: np.ndarray, elapsed_ms: float) -> None:
        if not self.active:
            return
        self.state.set_output(image)
        self._set_output_actions(True)
        if elapsed_ms:
            self.state.show_frame_time(f"{elapsed_ms:.0f} ms/frame")

    def _show_message(self, text: str) -> None:
        self.state.notify(text, 8000)
