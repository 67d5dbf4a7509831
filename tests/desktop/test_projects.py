"""Projects in the window: save/open, the modified marker, questions before losing work, autosave, recovery."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.main_window import MainWindow
from desktop.projects import AUTOSAVE_MS
from engine.core.project import ModelReference, load_project

pytestmark = pytest.mark.gui
Button = QMessageBox.StandardButton


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, settings, tmp_path) -> MainWindow:
    window = MainWindow(settings=settings, start_engine=False, autoload=False, recovery_dir=tmp_path / "recovery")
    qtbot.addWidget(window)
    window.resize(900, 600)
    window.show()
    qtbot.waitExposed(window)
    return window


def drawing(window, seed: int = 0) -> np.ndarray:
    """Load a random drawing into the canvas as the user would (one undo step); returns what it shows."""
    height, width = window.canvas.to_numpy().shape[:2]
    window.canvas.load_image(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))
    return window.canvas.to_numpy()


def fake_untrained_session(family: str = "pix2pix"):
    card = SimpleNamespace(path=None, family=family, config={"ngf": 4, "ndf": 4}, dataset={})
    return SimpleNamespace(card=card)


def answer(monkeypatch, button, calls=None):
    def question(*args, **_kwargs):
        if calls is not None:
            calls.append(args[2])
        return button
    monkeypatch.setattr(QMessageBox, "question", question)


def test_save_then_open_restores_canvas_and_model(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    projects = window.projects
    assert window.windowTitle().startswith("Untitled[*]") and not window.isWindowModified()
    projects._on_session_changed(fake_untrained_session())  # as if the window had loaded the model
    pixels = drawing(window)
    style_photo = np.random.default_rng(9).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    window.style_panel.set_style_image(style_photo, "photo.png")
    assert window.isWindowModified()
    target = tmp_path / "mine"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.actions_by_name["save_project"].trigger()
    saved = tmp_path / "mine.ganvas"
    assert projects.path == saved and not window.isWindowModified()
    assert window.windowTitle().startswith("mine[*]")
    assert load_project(saved).model == ModelReference("untrained", "pix2pix", {"ngf": 4, "ndf": 4})

    other = make_window(qtbot, settings, tmp_path / "other")
    requested = []
    monkeypatch.setattr(other, "load_model", requested.append)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(saved), ""))
    other.actions_by_name["open_project"].trigger()
    assert np.array_equal(other.canvas.to_numpy(), pixels)
    assert np.array_equal(other.style_panel.style_array, style_photo)
    assert other.projects.recent_projects()[0] == str(saved.resolve())  # saved, then opened: listed once
    menu = other.menus["recent_projects"]
    menu.aboutToShow.emit()
    assert [a.text() for a in menu.actions()] == [str(saved.resolve())]
    assert other.canvas.mode == window.canvas.mode
    assert other.projects.path == saved and not other.isWindowModified()
    assert requested == []  # the engine is not ready yet: the model waits for it
    other.engine_ready.emit(object())
    assert [(s.family, s.config) for s in requested] == [("pix2pix", {"ngf": 4, "ndf": 4})]
    other.canvas.resize_canvas(40, 30)  # what fitting the canvas to the loaded model may do
    other.projects._on_session_changed(fake_untrained_session())
    assert np.array_equal(other.canvas.to_numpy(), pixels) and not other.isWindowModified()
    assert other.windowTitle() == "mine[*] - Ganvas (pix2pix)"


def test_bad_project_file_shows_an_error_and_changes_nothing(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    before = window.canvas.to_numpy()
    bad = tmp_path / "bad.ganvas"
    bad.write_bytes(b"not a zip")
    errors = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: errors.append(args[2]) or Button.Ok)
    assert not window.projects.open_path(bad)
    assert len(errors) == 1 and "bad.ganvas" in errors[0]
    assert np.array_equal(window.canvas.to_numpy(), before) and window.projects.path is None


def test_new_after_changes_asks_to_save(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    projects = window.projects
    pixels = drawing(window)
    calls: list[str] = []
    answer(monkeypatch, Button.Cancel, calls)
    window.actions_by_name["new_project"].trigger()
    assert len(calls) == 1 and "Untitled" in calls[0]
    assert np.array_equal(window.canvas.to_numpy(), pixels) and projects.modified

    projects.path = tmp_path / "kept.ganvas"
    answer(monkeypatch, Button.Save, calls)
    assert projects.new_project()
    assert np.array_equal(load_project(tmp_path / "kept.ganvas").canvas, pixels)
    assert np.unique(window.canvas.to_numpy().reshape(-1, 3), axis=0).shape[0] == 1  # blank page
    assert projects.path is None and not projects.modified

    calls.clear()
    assert projects.new_project() and calls == []  # nothing unsaved: no question


def test_close_with_changes_can_be_cancelled(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    drawing(window)
    answer(monkeypatch, Button.Cancel)
    assert not window.close() and window.isVisible()
    answer(monkeypatch, Button.Discard)
    assert window.close()


def crash(window) -> None:
    """What a crash leaves behind: the recovery file, with no live window holding its lock."""
    window.projects.autosave_timer.stop()
    window.projects._recovery_lock.unlock()


def test_autosave_and_recovery(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    projects = window.projects
    recovery = projects.recovery_path
    assert recovery.parent == tmp_path / "recovery" and recovery.name.startswith("recovery-")
    assert projects.autosave_timer.interval() == AUTOSAVE_MS and projects.autosave_timer.isActive()
    assert not projects.autosave() and not recovery.exists()  # nothing unsaved, nothing written
    pixels = drawing(window, seed=3)
    assert projects.autosave() and recovery.is_file()
    assert projects.modified  # an autosave is not a save

    offers: list[str] = []
    answer(monkeypatch, Button.Yes, offers)
    neighbour = make_window(qtbot, settings, tmp_path)  # a second window while the first lives: no offer
    assert neighbour.projects.recovery_path != recovery and neighbour.projects._orphan is None
    crash(window)
    again = make_window(qtbot, settings, tmp_path)  # the next start
    qtbot.waitUntil(lambda: len(offers) == 1, timeout=5000)
    assert np.array_equal(again.canvas.to_numpy(), pixels)
    assert again.isWindowModified() and again.projects.path is None
    assert not recovery.exists()  # restored work lives on in the new window's own autosaves
    assert again.projects.autosave() and again.projects.recovery_path.is_file()

    answer(monkeypatch, Button.Discard)
    assert again.close()  # a clean exit removes the window's recovery file
    assert not again.projects.recovery_path.exists()


def test_declined_recovery_is_discarded(qtbot, settings, tmp_path, monkeypatch):
    window = make_window(qtbot, settings, tmp_path)
    drawing(window)
    assert window.projects.autosave()
    recovery = window.projects.recovery_path
    crash(window)
    answer(monkeypatch, Button.No)
    again = make_window(qtbot, settings, tmp_path)
    qtbot.waitUntil(lambda: not recovery.exists(), timeout=5000)
    assert not again.isWindowModified()


SIGTERM_SCRIPT = """
import sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from desktop.app import end_on_termination
from desktop.main_window import MainWindow
app = QApplication([])
settings = QSettings(sys.argv[2], QSettings.Format.IniFormat)
window = MainWindow(settings=settings, start_engine=False, autoload=False, recovery_dir=sys.argv[1])
end_on_termination(app, window)
window.show()
window.canvas.load_image(__import__("numpy").eye(8, dtype="uint8")[:, :, None].repeat(3, 2) * 255)  # unsaved work
QTimer.singleShot(0, lambda: print("ready", flush=True))
sys.exit(app.exec())
"""


def test_sigterm_keeps_the_work_and_leaves_no_stale_lock(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path / "rec"), str(tmp_path / "s.ini")],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == "ready"
        assert list((tmp_path / "rec").glob("*.lock"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert not list((tmp_path / "rec").glob("*.lock"))
    assert len(list((tmp_path / "rec").glob("recovery-*.ganvas"))) == 1  # offered back at the next start


def test_a_label_project_keeps_its_palette_and_draw_as_stays_usable(qtbot, settings, tmp_path, monkeypatch):
    from desktop.engine_loader import import_engine

    window = make_window(qtbot, settings, tmp_path)
    window.on_engine_ready(import_engine())
    window.projects._on_session_changed(fake_untrained_session())  # an image model: Draw as is the user's
    window.model_panel.set_draw_mode("edges")
    window._set_canvas_mode("label")  # chosen by hand: the default label palette
    drawing(window)
    target = tmp_path / "labels.ganvas"
    assert window.projects.save_to(target)
    assert load_project(target).palette == "facades"
    window.projects.open_path(target)
    assert window.canvas.mode == "label" and window.model_panel.mode_combo.isEnabled()


def test_a_stylegan2_project_keeps_the_latent_shown(qtbot, settings, tmp_path):
    """Saved with a latent model, a project holds the shown latent; opened again (here in a fresh window on the
    same bundled model), the editor shows the very same image, not seed 0."""
    from desktop.engine_loader import import_engine
    from desktop.model_panel import ModelSource

    api = import_engine()
    model = next(m for m in api.bundled if m.family == "stylegan2")

    def window_on_the_model(folder):
        window = make_window(qtbot, settings, folder)
        window.on_engine_ready(api)
        window.load_model(ModelSource(model.title, str(model.path)))
        qtbot.waitUntil(lambda: window.latent_editor.active and window.latent_editor.panel.model.settled(),
                        timeout=60000)
        return window, window.latent_editor.panel

    window, panel = window_on_the_model(tmp_path)
    seed_zero = panel.model.shown_image().copy()
    panel.seed_section.seed_box.setValue(7)
    qtbot.waitUntil(lambda: panel.model.settled() and panel.model.shown.state.seed == 7, timeout=20000)
    shown = panel.model.shown_image().copy()
    assert not np.array_equal(shown, seed_zero)
    assert window.projects.save_to(tmp_path / "face.ganvas")
    latents = load_project(tmp_path / "face.ganvas").latents
    assert latents["ws"].shape == (panel.model.session.num_ws, panel.model.session.w_dim)

    other, other_panel = window_on_the_model(tmp_path / "other")
    assert np.array_equal(other_panel.model.shown_image(), seed_zero)
    assert other.projects.open_path(tmp_path / "face.ganvas")
    qtbot.waitUntil(lambda: other_panel.model.base is not None and other_panel.model.settled(), timeout=20000)
    assert np.array_equal(other_panel.model.shown_image(), shown)
    assert other_panel.model.base_name == "the project's latent"
    # a window on no model: the project loads its model first, then shows its latent
    third = make_window(qtbot, settings, tmp_path / "third")
    third.on_engine_ready(api)
    assert third.projects.open_path(tmp_path / "face.ganvas")
    third_model = third.latent_editor.panel.model
    qtbot.waitUntil(lambda: third_model.base is not None and third_model.settled(), timeout=60000)
    assert np.array_equal(third_model.shown_image(), shown)
