"""The Ganvas desktop application (a first window; the full canvas app grows here)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    window = QMainWindow()
    window.setWindowTitle("Ganvas")
    window.setCentralWidget(QLabel("Ganvas"))
    window.resize(1200, 800)
    window.show()
    return app.exec()
