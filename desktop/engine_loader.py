"""Import the engine (and with it torch) in a background thread, so the window appears at once.

The GUI never imports torch itself: :class:`EngineLoader` runs :func:`engine.api.load_engine` off the UI thread
and hands the :class:`~engine.api.Engine` to the main thread through a queued Qt signal. Later long calls
(loading a checkpoint, building an untrained network) go through :class:`BackgroundCall`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.api import Engine, GanvasError, load_engine

# Inference options (``Translator.options``) the Style dock has controls for.
KNOWN_OPTIONS = ("direction", "tile", "seed", "style")


def import_engine(threads: int = 0) -> Engine:
    """Import the engine (slow: torch); see :func:`engine.api.load_engine`."""
    return load_engine(threads)


def error_message(exc: BaseException) -> str:
    """One line for the user: a GanvasError's own message, otherwise the type and text of a bug."""
    if isinstance(exc, GanvasError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class BackgroundCall(QObject):
    """Run ``function()`` in a daemon thread; ``done(result)`` or ``failed(exception)`` arrive in the GUI thread.

    Keep a reference to the object until one of the signals has arrived. Connect the signals to methods of
    QObjects living in the GUI thread (not to lambdas), so that Qt queues the calls into that thread.
    """

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, function: Callable[[], Any], name: str = "ganvas-call", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._function = function
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> BackgroundCall:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests and shutdown only); True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            result = self._function()
        except Exception as exc:  # reported to the user as a message, never a crash
            self.failed.emit(exc)
        else:
            self.done.emit(result)


class EngineLoader(QObject):
    """Imports the engine once in the background: ``ready(Engine)`` or ``failed(str)``."""

    ready = Signal(object)
    failed = Signal(str)

    def __init__(self, threads: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads = threads
        self._call: BackgroundCall | None = None
        self.api: Engine | None = None

    @property
    def started(self) -> bool:
        return self._call is not None

    def start(self) -> None:
        if self._call is not None:
            return
        self._call = BackgroundCall(lambda: import_engine(self._threads), "ganvas-engine-import", self)
        self._call.done.connect(self._on_done)
        self._call.failed.connect(self._on_failed)
        self._call.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._call is not None and self._call.wait(timeout)

    def _on_failed(self, exc: BaseException) -> None:
        self.failed.emit(error_message(exc))

    def _on_done(self, api: Engine) -> None:
        self.api = api
        self.ready.emit(api)
