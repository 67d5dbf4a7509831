"""The live-translation worker: latest request wins, results in order, errors as messages."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QObject

from desktop.inference_worker import InferenceResult, InferenceWorker
from engine.core.errors import ConfigError

pytestmark = pytest.mark.gui


class SlowSession:
    """Answers each image with its first pixel value, after a delay; records what it saw."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.seen: list[int] = []
        self.threads: set[int] = set()

    def translate(self, image: np.ndarray, keep_size: bool = False, **options) -> np.ndarray:
        self.threads.add(threading.get_ident())
        if options.get("fail"):
            raise ConfigError("invalid direction 'sideways': expected AtoB or BtoA", value="sideways")
        time.sleep(self.delay)
        self.seen.append(int(image[0, 0, 0]))
        return 255 - image


class Recorder(QObject):
    """Receives the worker's signals in the GUI thread (a QObject's methods get queued calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[InferenceResult] = []
        self.failures: list[tuple[int, str]] = []
        self.threads: set[int] = set()

    def on_result(self, result: InferenceResult) -> None:
        self.threads.add(threading.get_ident())
        self.results.append(result)

    def on_failed(self, request_id: int, message: str) -> None:
        self.failures.append((request_id, message))


@pytest.fixture
def worker(qtbot):
    worker = InferenceWorker()
    yield worker
    worker.stop()


def record(worker: InferenceWorker) -> Recorder:
    recorder = Recorder()
    worker.result_ready.connect(recorder.on_result)
    worker.failed.connect(recorder.on_failed)
    return recorder


def test_latest_request_wins_and_results_come_in_order(qtbot, worker):
    session = SlowSession(delay=0.1)
    worker.set_session(session)
    recorder = record(worker)
    ids = [worker.submit(np.full((8, 8, 3), i, np.uint8)) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    qtbot.waitUntil(lambda: bool(recorder.results) and recorder.results[-1].request_id == ids[-1], timeout=5000)
    qtbot.waitUntil(worker.is_idle, timeout=5000)
    assert worker.processed < 5  # stale requests were dropped unprocessed
    assert session.seen[-1] == 4  # the last one is always processed
    got = [r.request_id for r in recorder.results]
    assert got == sorted(got)
    last = recorder.results[-1]
    assert np.array_equal(last.image, np.full((8, 8, 3), 251, np.uint8))
    assert last.elapsed_ms >= 90 and last.session is session
    assert threading.get_ident() not in session.threads  # translation never runs in the GUI thread
    assert recorder.threads == {threading.get_ident()}  # results arrive in it


def test_submitted_image_is_copied(qtbot, worker):
    session = SlowSession(delay=0.05)
    worker.set_session(session)
    recorder = record(worker)
    image = np.full((4, 4, 3), 7, np.uint8)
    worker.submit(image)
    image[:] = 99  # the canvas keeps painting while the request waits
    qtbot.waitUntil(lambda: len(recorder.results) == 1, timeout=5000)
    assert session.seen == [7]


def test_errors_become_messages_and_the_worker_goes_on(qtbot, worker):
    worker.set_session(SlowSession(delay=0.0))
    recorder = record(worker)
    bad = worker.submit(np.zeros((4, 4, 3), np.uint8), {"fail": True})
    qtbot.waitUntil(lambda: bool(recorder.failures), timeout=5000)
    assert recorder.failures == [(bad, "invalid direction 'sideways': expected AtoB or BtoA")]
    good = worker.submit(np.zeros((4, 4, 3), np.uint8))
    qtbot.waitUntil(lambda: bool(recorder.results), timeout=5000)
    assert recorder.results[0].request_id == good


def test_no_session_means_no_request(qtbot, worker):
    assert worker.submit(np.zeros((4, 4, 3), np.uint8)) == -1
    assert worker.is_idle()


def test_untrained_pix2pix_through_the_worker(qtbot, worker):
    from engine.infer.inference import InferenceSession

    session = InferenceSession.untrained("pix2pix", size=(64, 64), device="cpu", depth=6, ngf=4, ndf=4)
    worker.set_session(session)
    with qtbot.waitSignal(worker.result_ready, timeout=10000) as blocker:
        worker.submit(np.full((48, 80, 3), 255, np.uint8))
    result = blocker.args[0]
    assert result.image.shape == (48, 80, 3) and result.image.dtype == np.uint8  # back at the canvas size
