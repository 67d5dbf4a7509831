"""Files changed under the window: a loaded model's file deleted or replaced, the open project written elsewhere."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from desktop.file_watch import FileWatch
from desktop.model_panel import ModelSource
from engine.core.project import load_project
from tests.desktop.test_main_window import engine_api, make_window, settings, tiny_checkpoint  # noqa: F401 (fixtures)
from tests.desktop.test_projects import drawing

pytestmark = pytest.mark.gui
Button = QMessageBox.StandardButton


def test_the_watch_reports_changes_by_others_once_and_follows_replaced_files(qtbot, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"1")
    watch = FileWatch()
    events = []
    watch.changed.connect(lambda p: events.append(("changed", p)))
    watch.deleted.connect(lambda p: events.append(("deleted", p)))
    watch.watch(path)
    assert not watch.changed_since_watch()
    replacement = tmp_path / ".model.tmp"
    replacement.write_bytes(b"22")
    os.replace(replacement, path)  # how atomic writers (ours too) replace a file
    qtbot.waitUntil(lambda: events == [("changed", str(path))], timeout=10000)
    assert watch.changed_since_watch()
    path.unlink()
    qtbot.waitUntil(lambda: events[-1] == ("deleted", str(path)), timeout=10000)
    watch.watch(None)
    assert not watch.changed_since_watch() and len(events) == 2


def test_deleting_or_replacing_the_loaded_model_file_keeps_the_window_and_says_so(qtbot, settings, tmp_path,  # noqa: F811
                                                                                   engine_api):  # noqa: F811
    path = tiny_checkpoint(tmp_path / "p2p.safetensors")
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    window.load_model(ModelSource("p2p", str(path)))
    qtbot.waitUntil(lambda: window.session is not None and window.session.card.path == str(path), timeout=120000)
    qtbot.waitUntil(window.output_view.has_output, timeout=60000)
    tiny_checkpoint(tmp_path / "other.safetensors").replace(path)
    qtbot.waitUntil(lambda: "changed on disk" in window.statusBar().currentMessage(), timeout=10000)
    assert "p2p.safetensors" in window.statusBar().currentMessage()
    path.unlink()
    qtbot.waitUntil(lambda: "was deleted" in window.statusBar().currentMessage(), timeout=10000)
    assert window.isVisible() and window.session.card.path == str(path)  # the model stays usable in memory
    window.canvas.load_image(np.zeros_like(window.canvas.to_numpy()))
    qtbot.waitUntil(window.output_view.has_output, timeout=60000)


def test_saving_over_a_project_changed_on_disk_asks_first(qtbot, settings, tmp_path, monkeypatch):  # noqa: F811
    window = make_window(qtbot, settings, recovery_dir=tmp_path / "recovery")
    projects = window.projects
    drawing(window, seed=1)
    assert projects.save_to(tmp_path / "mine.ganvas")
    elsewhere = make_window(qtbot, settings, recovery_dir=tmp_path / "recovery2")  # another window saves it
    assert elsewhere.projects.open_path(tmp_path / "mine.ganvas")
    theirs = drawing(elsewhere, seed=2)
    assert elsewhere.projects.save_to(tmp_path / "mine.ganvas")
    qtbot.waitUntil(lambda: "changed on disk" in window.statusBar().currentMessage(), timeout=10000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or Button.Cancel)
    drawing(window, seed=3)
    assert not projects.save()
    assert "mine.ganvas was changed on disk" in asked[0]
    assert np.array_equal(load_project(tmp_path / "mine.ganvas").canvas, theirs)  # their work is still there
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: Button.Save)
    assert projects.save() and not np.array_equal(load_project(tmp_path / "mine.ganvas").canvas, theirs)
    assert not projects.file_watch.changed_since_watch()  # our own save is the new reference
    (tmp_path / "mine.ganvas").unlink()
    qtbot.waitUntil(lambda: "was deleted" in window.statusBar().currentMessage(), timeout=10000)
    assert window.isWindowModified()  # nothing on disk holds the project now
