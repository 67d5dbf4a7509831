"""The application state the main window and its helpers share: a QObject with signals and no widgets.

:class:`AppState` holds what used to live in ``MainWindow`` attributes that the project controller, the latent
editor and the menus reached into: the imported engine, the loaded model (session and card), the draw mode
and label palette, the project file and its unsaved-changes flag, the output image, the app's settings. Helpers
observe its signals and act through its methods; the window observes it too and puts each change on screen
(status bar, title, Model panel, canvas palette, output view).

Requests that only the window can carry out (loading a model) go out as signals, so a helper never needs the
window itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal

from desktop.palette_dock import palette_for_model, palette_name_of
from engine.api import Engine, ModelSession

MAX_RECENT = 8


def labels_required(card: Any) -> bool:
    """Whether a model reads label maps: a label family, or trained on label maps in a named palette."""
    return getattr(card, "input_kind", "") == "labels" or palette_name_of(card) is not None or \
        getattr(card, "draw_as", "") == "label"


class AppState(QObject):
    """The window's shared state.

    Signals:
        engine_ready(Engine): the engine is imported.
        session_changed(session): a newly loaded model is in use (an InferenceSession or a LatentSession).
        model_requested(ModelSource): someone asks for a model to be loaded (the window loads it).
        draw_mode_changed(str, bool): the draw mode the model asks for, and whether it is locked.
        palette_changed(Palette): the canvas's label palette, chosen by name.
        output_changed(object): the output image (an RGB uint8 array) or None.
        frame_time_changed(str): how long the shown output took ("12 ms/frame", "error").
        title_changed(str): the window title (``[*]`` where the modified marker goes).
        modified_changed(bool): the project has unsaved changes, or no longer has.
        message(str, int): a status line and how long to show it (ms; 0: until replaced).
    """

    engine_ready = Signal(object)
    session_changed = Signal(object)
    model_requested = Signal(object)
    draw_mode_changed = Signal(str, bool)
    palette_changed = Signal(object)
    output_changed = Signal(object)
    frame_time_changed = Signal(str)
    title_changed = Signal(str)
    modified_changed = Signal(bool)
    message = Signal(str, int)

    def __init__(self, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.engine: Engine | None = None  # once imported (engine.api.load_engine)
        self.session: ModelSession | None = None  # a Translator or a LatentExplorer
        self.palette_name: str | None = None  # the named palette the canvas draws label maps in
        self.draw_mode = ""
        self.draw_mode_locked = False
        self.project_path: Path | None = None
        self.modified = False
        self.output: np.ndarray | None = None

    # --- engine and model -------------------------------------------------------------------------
    def set_engine(self, api: Any) -> None:
        self.engine = api
        self.engine_ready.emit(api)

    @property
    def card(self) -> Any:
        """The loaded model's card (None without a model)."""
        return getattr(self.session, "card", None)

    def set_session(self, session: ModelSession | None) -> None:
        """Record ``session`` as the model in use, without telling anyone yet (see :meth:`announce_session`)."""
        self.session = session

    def announce_session(self) -> None:
        """Tell observers the model in use changed (once the window has set itself up for it)."""
        self.session_changed.emit(self.session)

    def request_model(self, source: Any) -> None:
        """Ask for ``source`` (a ModelSource) to be loaded."""
        self.model_requested.emit(source)

    def recent_models(self) -> list[str]:
        """Model keys loaded lately, newest first."""
        return _string_list(self.settings.value("recent/models", []))

    def remember_model(self, key: str) -> None:
        if key:
            recent = [k for k in self.recent_models() if k != key]
            self.settings.setValue("recent/models", [key, *recent][:MAX_RECENT])

    # --- drawing ----------------------------------------------------------------------------------
    def set_draw_mode(self, mode: str, locked: bool = False) -> None:
        """The draw mode the model asks for (``locked``: the model dictates it)."""
        self.draw_mode, self.draw_mode_locked = mode, locked
        self.draw_mode_changed.emit(mode, locked)

    def use_palette(self, name: str) -> bool:
        """Draw label maps in the engine's palette ``name``; False (nothing changes) when it is unavailable."""
        palette = palette_for_model(self.engine, name)
        if palette is None:
            return False
        self.palette_changed.emit(palette)
        self.palette_name = name
        return True

    def set_output(self, image: np.ndarray | None) -> None:
        self.output = image
        self.output_changed.emit(image)

    def show_frame_time(self, text: str) -> None:
        self.frame_time_changed.emit(text)

    # --- project ----------------------------------------------------------------------------------
    def set_modified(self, modified: bool) -> None:
        if modified != self.modified:
            self.modified = modified
            self.modified_changed.emit(modified)

    def set_title(self, title: str) -> None:
        self.title_changed.emit(title)

    def start_folder(self, name: str = "") -> str:
        """Where file dialogs start: the project's folder once it is saved, else the home folder."""
        folder = self.project_path.parent if self.project_path is not None else Path.home()
        return str(folder / name) if name else str(folder)

    def notify(self, text: str, milliseconds: int = 0) -> None:
        """A status line for the user."""
        self.message.emit(text, milliseconds)


def _string_list(value: Any) -> list[str]:
    return [str(v) for v in ([value] if isinstance(value, str) else value or [])]
