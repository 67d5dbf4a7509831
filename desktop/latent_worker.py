"""Background work for the latent editor: renders where the latest request wins, and stoppable jobs.

Renders go through :class:`~desktop.inference_worker.LatestWorker` (re-exported here), so dragging a slider
never queues up renders. :class:`StoppableJob` runs an engine generator (projection) in a thread, forwards each
event to the GUI and asks the generator to stop through its ``should_stop`` callback.

Nothing here imports torch: the functions come from the GUI and call the engine's session objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.engine_loader import error_message
from desktop.inference_worker import LatestWorker, WorkResult

__all__ = ["LatestWorker", "StoppableJob", "WorkResult"]


class StoppableJob(QObject):
    """Run ``make(should_stop)`` (an iterable of events) in a daemon thread.

    Signals: ``progress(event)`` for every event, then ``finished(event)`` with the last one again
    (``None`` when there was none), ``failed(str)``. After :meth:`cancel` the generator is asked to stop at its
    next check; it still ends with its own final event, which arrives through ``finished``.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, make: Callable[[Callable[[], bool]], Iterable[Any]], name: str = "ganvas-latent-job",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._make = make
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> StoppableJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests and shutdown only); True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        last: Any = None
        try:
            for event in self._make(self._stop.is_set):
                self.progress.emit(event)
                last = event
        except Exception as exc:  # reported to the user as a message, never a crash
            self.failed.emit(error_message(exc))
            return
        self.finished.emit(last)
