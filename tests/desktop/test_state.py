"""The shared application state: its signals, and the project controller working over it without a window."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget

from desktop.canvas import CanvasWidget
from desktop.model_panel import ModelSource
from desktop.projects import ProjectController
from desktop.state import MAX_RECENT, AppState, labels_required
from desktop.style_panel import StylePanel
from engine import api
from engine.api import ModelReference, load_project

pytestmark = pytest.mark.gui


@pytest.fixture
def state(tmp_path) -> AppState:
    return AppState(QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat))


def test_engine_and_session_changes_are_announced(qtbot, state):
    api = SimpleNamespace(palette=None)
    with qtbot.waitSignal(state.engine_ready, timeout=1000) as ready:
        state.set_engine(api)
    assert ready.args == [api] and state.engine is api
    session = SimpleNamespace(card=SimpleNamespace(family="pix2pix"))
    with qtbot.assertNotEmitted(state.session_changed):
        state.set_session(session)  # recorded first; announced once the window has set itself up
    assert state.session is session and state.card is session.card
    with qtbot.waitSignal(state.session_changed, timeout=1000) as changed:
        state.announce_session()
    assert changed.args == [session]
    assert AppState(state.settings).card is None


def test_requests_draw_mode_output_and_messages_are_signals(qtbot, state):
    source = ModelSource("Untrained pix2pix", family="pix2pix")
    with qtbot.waitSignal(state.model_requested, timeout=1000) as requested:
        state.request_model(source)
    assert requested.args == [source]
    with qtbot.waitSignal(state.draw_mode_changed, timeout=1000) as mode:
        state.set_draw_mode("label", locked=True)
    assert mode.args == ["label", True] and (state.draw_mode, state.draw_mode_locked) == ("label", True)
    image = np.zeros((4, 4, 3), np.uint8)
    with qtbot.waitSignal(state.output_changed, timeout=1000) as output:
        state.set_output(image)
    assert output.args[0] is image and state.output is image
    with qtbot.waitSignal(state.message, timeout=1000) as message:
        state.notify("Saved x.png", 5000)
    assert message.args == ["Saved x.png", 5000]
    with qtbot.waitSignal(state.frame_time_changed, timeout=1000) as timed:
        state.show_frame_time("12 ms/frame")
    assert timed.args == ["12 ms/frame"]


def test_modified_flag_is_announced_only_when_it_changes(qtbot, state):
    seen: list[bool] = []
    state.modified_changed.connect(seen.append)
    state.set_modified(True)
    state.set_modified(True)
    state.set_modified(False)
    assert seen == [True, False] and not state.modified


def test_palette_by_name_through_the_engine(qtbot, state):
    assert not state.use_palette("facades")  # no engine yet: nothing changes
    state.set_engine(SimpleNamespace(load_palette=api.load_palette))
    with qtbot.waitSignal(state.palette_changed, timeout=1000) as changed:
        assert state.use_palette("facades")
    assert state.palette_name == "facades" and len(changed.args[0].colors) > 2
    with qtbot.assertNotEmitted(state.palette_changed):
        assert not state.use_palette("no-such-palette")
    assert state.palette_name == "facades"


def test_start_folder_and_recent_models(state, tmp_path):
    assert state.start_folder() == str(Path.home())
    state.project_path = tmp_path / "mine.ganvas"
    assert state.start_folder("out.png") == str(tmp_path / "out.png")
    for index in range(MAX_RECENT + 2):
        state.remember_model(f"file:/models/{index}.safetensors")
    state.remember_model("file:/models/3.safetensors")
    state.remember_model("")
    recent = state.recent_models()
    assert len(recent) == MAX_RECENT and recent[0] == "file:/models/3.safetensors" and len(set(recent)) == MAX_RECENT


def test_labels_required_reads_the_card():
    assert labels_required(SimpleNamespace(input_kind="labels"))
    assert labels_required(SimpleNamespace(input_kind="image", dataset={"palette": "facades"}, config={}))
    assert labels_required(SimpleNamespace(input_kind="image", draw_as="label"))
    assert not labels_required(SimpleNamespace(input_kind="image", dataset={}, config={}, draw_as="edges"))


def test_project_controller_needs_only_the_state_canvas_and_style(qtbot, state, tmp_path):
    parent = QWidget()
    qtbot.addWidget(parent)
    canvas, style = CanvasWidget(64, 64, mode="edges"), StylePanel()
    qtbot.addWidget(canvas)
    qtbot.addWidget(style)
    titles: list[str] = []
    state.title_changed.connect(titles.append)
    projects = ProjectController(state, canvas, style, parent, tmp_path / "recovery")
    assert titles[-1] == "Untitled[*] - Ganvas"
    card = SimpleNamespace(path=None, family="pix2pix", config={"ngf": 4}, dataset={})
    state.set_session(SimpleNamespace(card=card))
    state.announce_session()
    assert projects.model == ModelReference("untrained", "pix2pix", {"ngf": 4})
    canvas.load_image(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert state.modified and projects.modified
    output = np.full((64, 64, 3), 9, np.uint8)
    state.set_output(output)
    assert projects.save_to(tmp_path / "mine.ganvas")
    assert state.project_path == tmp_path / "mine.ganvas" and not state.modified
    assert titles[-1] == "mine[*] - Ganvas (pix2pix)"
    saved = load_project(tmp_path / "mine.ganvas")
    assert np.array_equal(saved.output, output) and np.array_equal(saved.canvas, canvas.to_numpy())
    requested: list[ModelSource] = []
    state.model_requested.connect(requested.append)
    other = AppState(state.settings)
    other_projects = ProjectController(other, CanvasWidget(64, 64, mode="edges"), StylePanel(), parent,
                                       tmp_path / "recovery2")
    other.model_requested.connect(requested.append)
    assert other_projects.open_path(tmp_path / "mine.ganvas")
    assert requested == []  # no engine yet: the project's model waits for it
    other.set_engine(SimpleNamespace(palette=None))
    assert [(s.family, s.config) for s in requested] == [("pix2pix", {"ngf": 4})]
    assert np.array_equal(other.output, output)
    projects.shutdown()
    other_projects.shutdown()
