"""Background work for the latent editor: renders where the latest request wins, and stoppable jobs.

:class:`LatestWorker` runs one function at a time in a daemon thread and keeps only the newest pending one,
so dragging a slider never queues up renders; every result carries its request id so the GUI can drop any
older than the newest it showed. :class:`StoppableJob` runs an engine generator (projection) in a thread,
forwards each event to the GUI and asks the generator to stop through its ``should_stop`` callback.

Nothing here imports torch: the functions come from the GUI and call the engine's session objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.engine_loader import error_message


@dataclass(frozen=True)
class WorkResult:
    request_id: int
    value: Any
    elapsed_ms: float
    tag: Any = None  # whatever the submitter attached (e.g. the session the work belongs to)


@dataclass(frozen=True)
class _Work:
    request_id: int
    function: Callable[[], Any]
    tag: Any


class LatestWorker(QObject):
    """One daemon thread running the newest submitted function; older pending ones are dropped unrun.

    Signals (delivered in the GUI thread when connected to methods of GUI-thread QObjects):
        result_ready(WorkResult)
        failed(int, str): request id and a one-line message.
    """

    result_ready = Signal(object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None, name: str = "ganvas-latent-render") -> None:
        super().__init__(parent)
        self._condition = threading.Condition()
        self._pending: _Work | None = None
        self._next_id = 0
        self._busy = False
        self._stopping = False
        self.processed = 0  # functions run (tests and diagnostics)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def last_request_id(self) -> int:
        return self._next_id

    def submit(self, function: Callable[[], Any], tag: Any = None) -> int:
        """Queue ``function`` in place of any request not yet started; returns its id (-1 once stopped)."""
        with self._condition:
            if self._stopping:
                return -1
            self._next_id += 1
            self._pending = _Work(self._next_id, function, tag)
            self._condition.notify()
            return self._next_id

    def cancel_pending(self) -> None:
        with self._condition:
            self._pending = None

    def is_idle(self) -> bool:
        with self._condition:
            return self._pending is None and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread after the function in progress (if any)."""
        with self._condition:
            self._stopping = True
            self._pending = None
            self._condition.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                work, self._pending = self._pending, None
                self._busy = True
            try:
                self._run(work)
            finally:
                with self._condition:
                    self._busy = False

    def _run(self, work: _Work) -> None:
        start = time.perf_counter()
        try:
            value = work.function()
        except Exception as exc:  # a model error becomes a message in the GUI, not a crash
            self.processed += 1
            self.failed.emit(work.request_id, error_message(exc))
            return
        self.processed += 1
        self.result_ready.emit(WorkResult(work.request_id, value, (time.perf_counter() - start) * 1000.0, work.tag))


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
