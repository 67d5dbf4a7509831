"""Measure the app's stroke-to-display latency and event-loop stalls: ``python -m desktop.bench_latency``.

Opens the real main window (run it under a display or ``xvfb-run``), loads an untrained U-Net-256 pix2pix
(``--ngf``, default 32; the bundled facades model has 28), or with ``--model`` a checkpoint or bundled model by
name (``--model facades``), on ``--backend`` (torch, openvino, onnxruntime or
auto; compiled models come from the cache after the first run), draws a scripted 3-second stroke at 60 pointer events per second and reports: the time from each
submitted frame to its display (p50, p95, max; coarse previews while the pen is down, then the full pass on
pen-up), how many frames were shown, the longest gap between 5 ms
timer ticks of the event loop, and the model's own time per frame (``--json FILE`` also writes them).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QPoint, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def _spin(app: QApplication, condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.002)
    return condition()


def main(argv: list[str] | None = None, settings_file: str = "/tmp/ganvas-bench-latency.ini") -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop.bench_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch", help="torch, openvino, onnxruntime or auto (default torch)")
    parser.add_argument("--ngf", type=int, default=32, help="U-Net-256 base width (default 32)")
    parser.add_argument("--model", help="a checkpoint, run folder or bundled model (e.g. facades) instead")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv)
    from desktop.main_window import MainWindow

    settings = QSettings(settings_file, QSettings.Format.IniFormat)
    settings.clear()
    window = MainWindow(settings=settings, autoload=False)
    window.resize(1500, 900)
    window.show()
    app.processEvents()
    shown_after = time.perf_counter() - started
    if not _spin(app, lambda: window.engine is not None, 120):
        print("engine did not load", file=sys.stderr)
        return 1
    engine_after = time.perf_counter() - started
    session = (window.engine.open_model(options.model, device="cpu") if options.model else
               window.engine.untrained_model("pix2pix", size=(256, 256), device="cpu", depth=8, ngf=options.ngf,
                                             ndf=32))
    print(session.use_backend(options.backend))
    window.set_session(session)
    window.canvas.fit_to_view()
    for preview in (False, False, False, True, True, True):  # warm up (and time the preview sizes) first
        session.translate(window.canvas.to_numpy(), preview=preview)

    submitted: dict[int, float] = {}
    displayed: list[tuple[float, int]] = []
    submit, set_output = window.worker.submit, window.output_view.set_output

    previews: set[int] = set()

    def timed_submit(image, options=None, preview=False):  # noqa: ANN001, ANN202 - the wrapped method's signature
        request_id = submit(image, options, preview=preview)
        submitted[request_id] = time.perf_counter()
        if preview:
            previews.add(request_id)
        return request_id

    def timed_set_output(image) -> None:  # noqa: ANN001
        set_output(image)
        displayed.append((time.perf_counter(), window._shown_id))

    window.worker.submit, window.output_view.set_output = timed_submit, timed_set_output
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    canvas, centre = window.canvas, window.canvas.rect().center()
    point = centre
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
    for i in range(180):
        point = centre + QPoint(int(150 * math.cos(i / 15)), int(120 * math.sin(i / 11)))
        QTest.mouseMove(canvas, point)
        _spin(app, lambda end=time.perf_counter() + 1 / 60: time.perf_counter() >= end, 1)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    _spin(app, window.worker.is_idle, 10)
    _spin(app, lambda end=time.perf_counter() + 0.5: time.perf_counter() >= end, 1)
    timer.stop()

    latencies = [(t - submitted[rid]) * 1000 for t, rid in displayed if rid in submitted]
    full_after_pen_up = [(t - submitted[rid]) * 1000 for t, rid in displayed if rid in submitted and rid not in previews]
    model_ms: dict[bool, list[float]] = {False: [], True: []}
    for preview in (False,) * 10 + (True,) * 12:
        begin = time.perf_counter()
        session.translate(canvas.to_numpy(), preview=preview)
        model_ms[preview].append((time.perf_counter() - begin) * 1000)
    print(f"window shown {shown_after * 1000:.0f} ms and engine ready {engine_after * 1000:.0f} ms after QApplication")
    print(f"frames shown {len(latencies)} of {len(submitted)} requests; stroke-to-display p50 "
          f"{statistics.median(latencies):.0f} ms, p95 {statistics.quantiles(latencies, n=20)[18]:.0f} ms, "
          f"max {max(latencies):.0f} ms")
    print(f"event loop: longest gap between 5 ms ticks {max(gaps) * 1000:.1f} ms; gaps over 50 ms: "
          f"{sum(g > 0.05 for g in gaps)}")
    print(f"full pass after pen-up shown {', '.join(f'{ms:.0f}' for ms in full_after_pen_up)} ms after its request")
    preview_size = session.preview_size(session.size)
    print(f"model alone: full pass {statistics.median(model_ms[False]):.0f} ms, preview pass at "
          f"{preview_size[0]}x{preview_size[1]} {statistics.median(model_ms[True]):.0f} ms per frame")
    if options.json:
        figures = {"model": options.model or f"untrained pix2pix ngf {options.ngf}", "backend": session.backend,
                   "backend_note": session.backend_note, "window_shown_ms": shown_after * 1000,
                   "engine_ready_ms": engine_after * 1000, "requests": len(submitted), "frames_shown": len(latencies),
                   "stroke_to_display_ms": {"p50": statistics.median(latencies),
                                            "p95": statistics.quantiles(latencies, n=20)[18], "max": max(latencies)},
                   "longest_gap_ms": max(gaps) * 1000, "gaps_over_50ms": sum(g > 0.05 for g in gaps),
                   "full_after_pen_up_ms": full_after_pen_up, "model_full_ms": statistics.median(model_ms[False]),
                   "model_preview_ms": statistics.median(model_ms[True]), "preview_size": list(preview_size),
                   "native_size": list(session.size)}
        with open(options.json, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=1)
    window.projects.confirm_discard = lambda *args, **kwargs: True
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
