"""Background work in the app: one :class:`Worker` base for calls, generators and latest-request-wins.

Every worker is a QObject owning one daemon thread (a stuck model load never holds the app open at exit),
with a stop flag the work can read and signals that arrive in the GUI thread when connected to methods of
GUI-thread QObjects (not to lambdas, which would run in the worker's thread):

* :meth:`Worker.call` runs ``function()``: ``returned(result)`` or ``errored(exception)``.
* :meth:`Worker.generator` runs ``make(should_stop)``, an iterable of events: ``yielded(event)`` for each, then
  ``returned(last event)`` (``None`` when there was none) or ``errored(exception)``. :meth:`Worker.stop` asks
  the generator to stop at its next check; it ends with its own final event, which still arrives.
* :class:`LatestWorker` keeps its thread and runs the newest submitted function; older pending ones are dropped
  unrun: ``result_ready(WorkResult)`` or ``failed(request id, message)`` per request.

Errors reach the user as one line (:func:`error_message`) in a dialog or the status bar, never as a crash.
Training is not here: it runs in its own process (:mod:`desktop.training.run_controller`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.api import GanvasError


def error_message(exc: BaseException) -> str:
    """One line for the user: a GanvasError's own message, otherwise the type and text of a bug."""
    if isinstance(exc, GanvasError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Worker(QObject):
    """One daemon thread running :meth:`work`; build one with :meth:`call` or :meth:`generator`, then
    :meth:`start` it. Keep a reference until ``returned`` or ``errored`` has arrived.

    Signals:
        yielded(object): each event of a generator.
        returned(object): the call's result, or the generator's last event.
        errored(object): the exception the work raised.
    """

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)

    def __init__(self, work: Callable[[], Any] | None = None, name: str = "ganvas-worker",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @classmethod
    def call(cls, function: Callable[[], Any], name: str = "ganvas-call", parent: QObject | None = None) -> Worker:
        """A worker that runs ``function()`` once."""
        return cls(function, name, parent)

    @classmethod
    def generator(cls, make: Callable[[Callable[[], bool]], Iterable[Any]], name: str = "ganvas-job",
                  parent: QObject | None = None) -> Worker:
        """A worker that runs ``make(should_stop)`` and forwards its events."""
        worker = cls(None, name, parent)
        worker._work = lambda: worker._forward(make(worker.should_stop))
        return worker

    def start(self) -> Worker:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the work to end at its next check of :meth:`should_stop`."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests and shutdown only); True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def work(self) -> Any:
        """What the thread does; the value goes out through ``returned``."""
        if self._work is None:
            raise NotImplementedError("give Worker a function or override work()")
        return self._work()

    def _forward(self, events: Iterable[Any]) -> Any:
        last: Any = None
        for event in events:
            self._deliver(self.yielded, event)
            last = event
        return last

    def _run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # reported to the user as a message, never a crash
            self._deliver(self.errored, exc)
        else:
            self._deliver(self.returned, result)

    def _deliver(self, signal: Any, *args: Any) -> None:
        """Emit, unless the object that owns this worker was destroyed meanwhile (then ask the work to stop)."""
        try:
            signal.emit(*args)
        except RuntimeError:  # "Signal source has been deleted": the app is shutting down
            self._stop.set()


@dataclass(frozen=True)
class WorkResult:
    request_id: int
    value: Any
    elapsed_ms: float
    tag: Any = None  # whatever the submitter attached (e.g. the session the work belongs to)


@dataclass(frozen=True)
class _Request:
    request_id: int
    function: Callable[[], Any]
    tag: Any


class LatestWorker(Worker):
    """A :class:`Worker` whose thread runs the newest submitted function; older pending ones are dropped unrun.

    The thread starts at once and lives until :meth:`stop`, so a model always runs in the same thread.

    Signals (besides the base's, which report only the end of the thread):
        result_ready(WorkResult)
        failed(int, str): request id and a one-line message.
    """

    result_ready = Signal(object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None, name: str = "ganvas-worker") -> None:
        super().__init__(None, name, parent)
        self._condition = threading.Condition()
        self._pending: _Request | None = None
        self._next_id = 0
        self._busy = False
        self.processed = 0  # functions run (tests and diagnostics)
        self.start()

    @property
    def last_request_id(self) -> int:
        return self._next_id

    def submit(self, function: Callable[[], Any], tag: Any = None) -> int:
        """Queue ``function`` in place of any request not yet started; returns its id (-1 once stopped)."""
        with self._condition:
            if self.should_stop():
                return -1
            self._next_id += 1
            self._pending = _Request(self._next_id, function, tag)
            self._condition.notify()
            return self._next_id

    def cancel_pending(self) -> None:
        with self._condition:
            self._pending = None

    def is_idle(self) -> bool:
        with self._condition:
            return self._pending is None and not self._busy

    def stop(self, timeout: float = 5.0) -> None:  # type: ignore[override]
        """End the thread after the function in progress (if any)."""
        with self._condition:
            super().stop()
            self._pending = None
            self._condition.notify()
        self.wait(timeout)

    def work(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self.should_stop():
                    self._condition.wait()
                if self.should_stop():
                    return
                request, self._pending = self._pending, None
                self._busy = True
            try:
                self._run_request(request)
            finally:
                with self._condition:
                    self._busy = False

    def _run_request(self, request: _Request) -> None:
        start = time.perf_counter()
        try:
            value = request.function()
        except Exception as exc:  # a model error becomes a message in the GUI, not a crash
            self.processed += 1
            self._deliver(self.failed, request.request_id, error_message(exc))
            return
        self.processed += 1
        elapsed = (time.perf_counter() - start) * 1000.0
        self._deliver(self.result_ready, self._result(request.request_id, value, elapsed, request.tag))

    def _result(self, request_id: int, value: Any, elapsed_ms: float, tag: Any) -> Any:
        """The object ``result_ready`` carries (subclasses may give it a domain-specific type)."""
        return WorkResult(request_id, value, elapsed_ms, tag)
