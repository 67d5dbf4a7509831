"""The one worker base: calls, generators that can be asked to stop, and the latest-request-wins worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QObject

from desktop.workers import LatestWorker, Worker, WorkResult, error_message
from engine.core.errors import ConfigError

pytestmark = pytest.mark.gui


class Recorder(QObject):
    """Receives a worker's signals in the GUI thread (a QObject's methods get queued calls)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.events: list[object] = []
        self.returned: list[object] = []
        self.errors: list[BaseException] = []
        self.threads: set[int] = set()
        worker.yielded.connect(self.on_yielded)
        worker.returned.connect(self.on_returned)
        worker.errored.connect(self.on_errored)

    def on_yielded(self, event: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(event)

    def on_returned(self, value: object) -> None:
        self.threads.add(threading.get_ident())
        self.returned.append(value)

    def on_errored(self, exc: BaseException) -> None:
        self.errors.append(exc)


def test_a_call_runs_off_the_gui_thread_and_returns_in_it(qtbot):
    ran_in: list[int] = []

    def work() -> int:
        ran_in.append(threading.get_ident())
        return 42

    worker = Worker.call(work, "test-call")
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.returned, timeout=5000):
        worker.start()
    assert worker.wait(5)
    assert recorder.returned == [42] and not recorder.errors and not recorder.events
    assert ran_in and ran_in[0] != threading.get_ident()
    assert recorder.threads == {threading.get_ident()}


def test_a_failing_call_reports_its_exception(qtbot):
    def work() -> None:
        raise ConfigError("invalid direction 'sideways': expected AtoB or BtoA", value="sideways")

    worker = Worker.call(work)
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.errored, timeout=5000):
        worker.start()
    assert not recorder.returned and len(recorder.errors) == 1
    assert error_message(recorder.errors[0]) == "invalid direction 'sideways': expected AtoB or BtoA"
    assert error_message(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero"


def test_a_generator_forwards_events_and_returns_the_last(qtbot):
    worker = Worker.generator(lambda should_stop: iter(["a", "b", "c"]))
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.returned, timeout=5000):
        worker.start()
    assert recorder.events == ["a", "b", "c"] and recorder.returned == ["c"]
    empty = Worker.generator(lambda should_stop: iter(()))
    nothing = Recorder(empty)
    with qtbot.waitSignal(empty.returned, timeout=5000):
        empty.start()
    assert nothing.events == [] and nothing.returned == [None]


def test_stopping_a_generator_lets_it_end_with_its_own_last_event(qtbot):
    proceed = threading.Event()

    def counting(should_stop: Callable[[], bool]) -> Iterator[tuple[str, int]]:
        for step in range(1, 10_000):
            if should_stop():
                yield "stopped", step
                return
            yield "step", step
            proceed.wait(5)  # one step at a time until the test has asked to stop

    worker = Worker.generator(counting, "test-job")
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.yielded, timeout=5000):
        worker.start()
    worker.stop()
    assert worker.should_stop()
    with qtbot.waitSignal(worker.returned, timeout=5000):
        proceed.set()
    assert recorder.returned[0][0] == "stopped" and recorder.events[-1] == recorder.returned[0]
    assert all(kind == "step" for kind, _ in recorder.events[:-1])
    assert worker.wait(5) and not worker.is_running()


def test_a_failing_generator_reports_after_its_events(qtbot):
    def failing(should_stop: Callable[[], bool]) -> Iterator[int]:
        yield 1
        raise ValueError("bad frame")

    worker = Worker.generator(failing)
    recorder = Recorder(worker)
    with qtbot.waitSignal(worker.errored, timeout=5000):
        worker.start()
    assert recorder.events == [1] and not recorder.returned
    assert error_message(recorder.errors[0]) == "ValueError: bad frame"


class LatestRecorder(QObject):
    def __init__(self, worker: LatestWorker) -> None:
        super().__init__()
        self.results: list[WorkResult] = []
        self.failures: list[tuple[int, str]] = []
        worker.result_ready.connect(self.on_result)
        worker.failed.connect(self.on_failed)

    def on_result(self, result: WorkResult) -> None:
        self.results.append(result)

    def on_failed(self, request_id: int, message: str) -> None:
        self.failures.append((request_id, message))


def test_latest_worker_drops_pending_requests_for_the_newest(qtbot):
    worker = LatestWorker(name="test-latest")
    recorder = LatestRecorder(worker)
    gate, ran = threading.Event(), []

    def job(value: int) -> Callable[[], int]:
        def run() -> int:
            ran.append(value)
            gate.wait(5)
            return value * 10
        return run

    first = worker.submit(job(1), tag="first")
    qtbot.waitUntil(lambda: ran == [1], timeout=5000)  # the first is running: later ones wait
    ids = [worker.submit(job(v), tag=v) for v in (2, 3, 4)]
    assert ids == [first + 1, first + 2, first + 3] == [worker.last_request_id - 2, worker.last_request_id - 1,
                                                         worker.last_request_id]
    gate.set()
    qtbot.waitUntil(lambda: len(recorder.results) == 2, timeout=5000)
    qtbot.waitUntil(worker.is_idle, timeout=5000)
    assert ran == [1, 4] and worker.processed == 2  # 2 and 3 were replaced before they started
    assert [(r.request_id, r.value, r.tag) for r in recorder.results] == [(first, 10, "first"), (ids[-1], 40, 4)]
    assert all(r.elapsed_ms >= 0 for r in recorder.results)
    bad = worker.submit(lambda: 1 / 0)
    qtbot.waitUntil(lambda: bool(recorder.failures), timeout=5000)
    assert recorder.failures == [(bad, "ZeroDivisionError: division by zero")]
    worker.stop()
    assert not worker.is_running() and worker.submit(job(5)) == -1


def test_latest_worker_cancel_pending_drops_the_waiting_request(qtbot):
    worker = LatestWorker(name="test-latest-cancel")
    recorder = LatestRecorder(worker)
    gate, ran = threading.Event(), []

    def blocking() -> str:
        ran.append("blocking")
        gate.wait(5)
        return "done"

    worker.submit(blocking)
    qtbot.waitUntil(lambda: ran == ["blocking"], timeout=5000)
    worker.submit(lambda: ran.append("dropped"))
    worker.cancel_pending()
    gate.set()
    qtbot.waitUntil(worker.is_idle, timeout=5000)
    qtbot.waitUntil(lambda: len(recorder.results) == 1, timeout=5000)
    assert ran == ["blocking"] and recorder.results[0].value == "done"
    worker.stop()
