"""Background threads where the latest request wins: :class:`LatestWorker` and live translation on it.

:class:`LatestWorker` runs one submitted function at a time and keeps only the newest pending one.
:class:`InferenceWorker` uses it for live translation: the GUI submits the canvas after every pointer event;
the worker keeps only the newest pending request,
so a slow model skips frames instead of falling behind, and painting never waits for it. Each result carries
the id of its request and the time the model took; the GUI drops results older than the newest it showed.

Nothing here imports torch: the session object comes from the engine, which was imported elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.engine_loader import error_message


class Translator(Protocol):
    """What the worker needs of an ``engine.infer.inference.InferenceSession``."""

    def translate(self, image: np.ndarray, keep_size: bool = False, preview: bool = False,
                  **options: Any) -> np.ndarray: ...


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

    def __init__(self, parent: QObject | None = None, name: str = "ganvas-worker") -> None:
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
            self._deliver(self.failed, work.request_id, error_message(exc))
            return
        self.processed += 1
        elapsed = (time.perf_counter() - start) * 1000.0
        self._deliver(self.result_ready, self._result(work.request_id, value, elapsed, work.tag))

    def _result(self, request_id: int, value: Any, elapsed_ms: float, tag: Any) -> Any:
        """The object ``result_ready`` carries (subclasses may give it a domain-specific type)."""
        return WorkResult(request_id, value, elapsed_ms, tag)

    def _deliver(self, signal: Any, *args: Any) -> None:
        """Emit, unless the object that owns this worker was destroyed meanwhile (then end the thread)."""
        try:
            signal.emit(*args)
        except RuntimeError:  # "Signal source has been deleted": the app is shutting down
            with self._condition:
                self._stopping = True



@dataclass(frozen=True)
class InferenceResult:
    request_id: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    elapsed_ms: float
    session: Any = field(repr=False)  # the session that produced it (a result of a replaced model is stale)
    preview: bool = False  # a coarse pass while a stroke is drawn; the full pass follows on pen-up


class InferenceWorker(LatestWorker):
    """Translates the newest submitted image with the current session.

    Signals (delivered in the GUI thread when connected to methods of GUI-thread QObjects):
        result_ready(InferenceResult)
        failed(int, str): request id and a one-line message.
    """

    def __init__(self, session: Translator | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent, name="ganvas-inference")
        self._session = session

    @property
    def session(self) -> Translator | None:
        return self._session

    def set_session(self, session: Translator | None) -> None:
        """Use ``session`` for the next requests; a pending request for the old one is dropped."""
        with self._condition:
            self._session = session
            self._pending = None

    def submit(self, image: np.ndarray, options: dict[str, Any] | None = None,  # type: ignore[override]
               preview: bool = False) -> int:
        """Queue ``image`` (copied) for translation, replacing any request not yet started; returns its id.

        ``preview`` asks for the session's fast coarse pass (used while a stroke is in progress).
        Returns -1 (and queues nothing) when there is no session.
        """
        session = self._session
        if session is None:
            return -1
        image, options = np.array(image, copy=True), dict(options or {})
        return super().submit(lambda: session.translate(image, keep_size=True, preview=preview, **options),
                              tag=(session, preview))

    def _result(self, request_id: int, value: Any, elapsed_ms: float, tag: Any) -> InferenceResult:
        session, preview = tag
        return InferenceResult(request_id, value, elapsed_ms, session, preview)
