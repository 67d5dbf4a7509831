"""Live translation off the UI thread, on a :class:`~desktop.workers.LatestWorker` (the latest request wins).

:class:`InferenceWorker`: the GUI submits the canvas after every pointer event; the worker keeps only the
newest pending request, so a slow model skips frames instead of falling behind, and painting never waits for
it. Each result carries the id of its request and the time the model took; the GUI drops results older than
the newest it showed.

Nothing here imports torch: the session object comes from the engine, which was imported elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject

from desktop.workers import LatestWorker


class Translator(Protocol):
    """What the worker needs of an ``engine.infer.inference.InferenceSession``."""

    def translate(self, image: np.ndarray, keep_size: bool = False, preview: bool = False,
                  **options: Any) -> np.ndarray: ...


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
