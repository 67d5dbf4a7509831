"""Import the engine (and with it torch) in a background thread, so the window appears at once.

The GUI never imports torch itself: :class:`EngineLoader` runs :func:`engine.api.load_engine` off the UI thread
and hands the :class:`~engine.api.Engine` to the main thread through a queued Qt signal. Later long calls
(loading a checkpoint, building an untrained network) go through :class:`~desktop.workers.Worker`.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop.workers import Worker, error_message
from engine.api import Engine, load_engine

# Inference options (``Translator.options``) the Style dock has controls for.
KNOWN_OPTIONS = ("direction", "tile", "seed", "style")


def import_engine(threads: int = 0) -> Engine:
    """Import the engine (slow: torch); see :func:`engine.api.load_engine`."""
    return load_engine(threads)


class EngineLoader(QObject):
    """Imports the engine once in the background: ``ready(Engine)`` or ``failed(str)``."""

    ready = Signal(object)
    failed = Signal(str)

    def __init__(self, threads: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads = threads
        self._call: Worker | None = None
        self.api: Engine | None = None

    @property
    def started(self) -> bool:
        return self._call is not None

    def start(self) -> None:
        if self._call is not None:
            return
        self._call = Worker.call(lambda: import_engine(self._threads), "ganvas-engine-import", self)
        self._call.returned.connect(self._on_done)
        self._call.errored.connect(self._on_failed)
        self._call.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._call is not None and self._call.wait(timeout)

    def _on_failed(self, exc: BaseException) -> None:
        self.failed.emit(error_message(exc))

    def _on_done(self, api: Engine) -> None:
        self.api = api
        self.ready.emit(api)
