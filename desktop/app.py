"""The Ganvas desktop application.

:func:`main` shows the window at once; the engine (and torch) is imported in a background thread by
:class:`~desktop.engine_loader.EngineLoader`. With ``GANVAS_STARTUP_PROBE=1`` the milliseconds from process
start to "window shown" and to "engine ready" are written to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """When this process started (epoch seconds): from /proc on Linux, else when this module was imported."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/uptime") as uptime:
            up = float(uptime.read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        return time.time() - up + int(fields[19]) / ticks  # field 22 (starttime), counted after "pid (comm)"
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


class StartupProbe:
    """Writes ``ganvas startup: <event> <ms> ms`` lines to stderr when enabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = process_start_time()

    def mark(self, event: str) -> None:
        if self.enabled:
            print(f"ganvas startup: {event} {(time.time() - self.start) * 1000:.0f} ms", file=sys.stderr,
                  flush=True)


def end_on_termination(app: Any, window: Any) -> None:
    """SIGTERM (a logout, ``kill``) ends the app like a crash would not: unsaved work goes to the recovery file,
    the recovery lock is released and the model worker stops. A timer lets Python see the signal while Qt's
    event loop runs."""
    from PySide6.QtCore import QTimer

    def on_signal(signum: int, frame: Any) -> None:
        QTimer.singleShot(0, end)

    def end() -> None:
        window.projects.end_on_signal()
        window.worker.stop()
        app.exit(0)  # not quit(): that closes the windows, and closing asks about unsaved changes

    signal.signal(signal.SIGTERM, on_signal)
    wake = QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(250)


def main(argv: list[str] | None = None) -> int:
    probe = StartupProbe(os.environ.get("GANVAS_STARTUP_PROBE") == "1")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setOrganizationName("Ganvas")
    app.setApplicationName("Ganvas")
    window = MainWindow()
    window.loader.ready.connect(lambda _api: probe.mark("engine ready"))
    end_on_termination(app, window)
    window.show()
    QTimer.singleShot(0, lambda: probe.mark("window shown"))
    return app.exec()
