"""Live translation in a worker thread where the latest request wins.

The GUI submits the canvas after every pointer event; the worker keeps only the newest pending request,
so a slow model skips frames instead of falling behind, and painting never waits for it. Each result carries
the id of its request and the time the model took; the GUI drops results older than the newest it showed.

Nothing here imports torch: the session object comes from the engine, which was imported elsewhere.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.engine_loader import error_message


class Translator(Protocol):
    """What the worker needs of an ``engine.inference.InferenceSession``."""

    def translate(self, image: np.ndarray, keep_size: bool = False, **options: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class InferenceResult:
    request_id: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    elapsed_ms: float
    session: Any = field(repr=False)  # the session that produced it (a result of a replaced model is stale)


@dataclass(frozen=True)
class _Request:
    request_id: int
    image: np.ndarray
    options: dict[str, Any]
    session: Translator


class InferenceWorker(QObject):
    """One daemon thread translating the newest submitted image with the current session.

    Signals (delivered in the GUI thread when connected to methods of GUI-thread QObjects):
        result_ready(InferenceResult)
        failed(int, str): request id and a one-line message.
    """

    result_ready = Signal(object)
    failed = Signal(int, str)

    def __init__(self, session: Translator | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._condition = threading.Condition()
        self._pending: _Request | None = None
        self._next_id = 0
        self._busy = False
        self._stopping = False
        self.processed = 0  # requests run (for tests and diagnostics)
        self._thread = threading.Thread(target=self._loop, name="ganvas-inference", daemon=True)
        self._thread.start()

    @property
    def session(self) -> Translator | None:
        return self._session

    def set_session(self, session: Translator | None) -> None:
        """Use ``session`` for the next requests; a pending request for the old one is dropped."""
        with self._condition:
            self._session = session
            self._pending = None

    def submit(self, image: np.ndarray, options: dict[str, Any] | None = None) -> int:
        """Queue ``image`` (copied) for translation, replacing any request not yet started; returns its id.

        Returns -1 (and queues nothing) when there is no session.
        """
        with self._condition:
            if self._session is None or self._stopping:
                return -1
            self._next_id += 1
            self._pending = _Request(self._next_id, np.array(image, copy=True), dict(options or {}),
                                     self._session)
            self._condition.notify()
            return self._next_id

    @property
    def last_request_id(self) -> int:
        return self._next_id

    def is_idle(self) -> bool:
        with self._condition:
            return self._pending is None and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread after the request in progress (if any)."""
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
                request, self._pending = self._pending, None
                self._busy = True
            try:
                self._run(request)
            finally:
                with self._condition:
                    self._busy = False

    def _run(self, request: _Request) -> None:
        start = time.perf_counter()
        try:
            output = request.session.translate(request.image, keep_size=True, **request.options)
        except Exception as exc:  # a model error becomes a message in the GUI, not a crash
            self.processed += 1
            self._deliver(self.failed, request.request_id, error_message(exc))
            return
        self.processed += 1
        elapsed = (time.perf_counter() - start) * 1000.0
        self._deliver(self.result_ready, InferenceResult(request.request_id, output, elapsed, request.session))

    def _deliver(self, signal: Any, *args: Any) -> None:
        """Emit, unless the window that owns this worker was destroyed meanwhile (then end the thread)."""
        try:
            signal.emit(*args)
        except RuntimeError:  # "Signal source has been deleted": the app is shutting down
            with self._condition:
                self._stopping = True
