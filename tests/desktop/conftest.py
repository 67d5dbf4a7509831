"""Qt runs headless in these tests; the platform must be chosen before Qt is imported."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _discard_unsaved_changes(monkeypatch):
    """Closing a window with unsaved changes asks Save/Discard/Cancel, which would block a test at teardown.

    Every question is answered "Discard" (and a recovery offer "no") unless a test patches it itself.
    """
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *_args, **_kwargs: QMessageBox.StandardButton.Discard)


@pytest.fixture(autouse=True)
def _torch_backend(monkeypatch):
    """Checkpoints load on torch unless a test asks for a compiled backend (compiling costs seconds)."""
    monkeypatch.setattr("desktop.preferences.DEFAULT_BACKEND", "torch")


@pytest.fixture(autouse=True)
def _no_unexpected_error_dialogs(monkeypatch):
    """An error box nobody answers would block the test until its time limit: fail at once, with its text.

    Tests that expect an error box patch ``QMessageBox.critical`` themselves.
    """
    from PySide6.QtWidgets import QMessageBox

    def fail(_parent, title, text, *_args, **_kwargs):
        raise AssertionError(f"unexpected error dialog {title!r}: {text}")

    monkeypatch.setattr(QMessageBox, "critical", fail)
