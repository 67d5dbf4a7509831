"""The canvas never loses work silently: Draw as, another model and another size keep the drawing (one undo
step each); filled shapes; a tool bar that never changes width; tool keys and the wheel where the user is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QSlider

from desktop.engine_loader import import_engine
from desktop.main_window import MainWindow

pytestmark = pytest.mark.gui
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def engine_api():
    return import_engine()


@pytest.fixture
def window(qtbot, tmp_path, engine_api) -> MainWindow:
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=False, recovery_dir=tmp_path / "rec")
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    window.on_engine_ready(engine_api)
    return window


def drag(qtbot, canvas, start, end) -> None:
    def at(x, y):
        return QPoint(round(canvas.offset.x() + (x + 0.5) * canvas.zoom), round(canvas.offset.y() + (y + 0.5) * canvas.zoom))
    qtbot.mousePress(canvas, LEFT, Qt.KeyboardModifier.NoModifier, at(*start))
    qtbot.mouseMove(canvas, at(*end))
    qtbot.mouseRelease(canvas, LEFT, Qt.KeyboardModifier.NoModifier, at(*end))


def session(family: str, **config):
    from engine.infer.inference import InferenceSession

    small = {"pix2pix": {"depth": 5, "ngf": 4, "ndf": 4}, "spade": {"ngf": 4, "ndf": 4, "image_size": (64, 64)}}
    return InferenceSession.untrained(family, size=(64, 64), device="cpu", **{**small.get(family, {}), **config})


def test_resizing_scales_an_opened_photo_in_one_undo_step(window):
    canvas = window.canvas
    window._set_canvas_mode("photo")
    photo = np.zeros((64, 128, 3), np.uint8)
    photo[:, 64:] = (200, 30, 30)  # left half black, right half red
    canvas.load_image(photo)
    canvas.resize_canvas(64, 32)
    resized = canvas.to_numpy()
    assert resized.shape == (32, 64, 3)
    assert resized[16, 5].tolist() == [0, 0, 0] and resized[16, 60].tolist() == [200, 30, 30]  # scaled, not wiped
    canvas.undo()
    assert np.array_equal(canvas.to_numpy(), photo)


def test_draw_as_converts_or_asks_and_is_one_undo_step(window, qtbot, monkeypatch):
    canvas = window.canvas
    window.set_session(session("pix2pix"))
    window.model_panel.set_draw_mode("edges")
    window._set_canvas_mode("edges")
    drag(qtbot, canvas, (5, 30), (60, 30))
    drawn = canvas.to_numpy()
    assert (drawn == 0).any()
    window.model_panel.mode_combo.setCurrentIndex(window.model_panel.mode_combo.findData("sketch"))
    assert canvas.mode == "sketch" and np.array_equal(canvas.to_numpy(), drawn)  # line art stays line art
    asked = []
    monkeypatch.setattr(window, "ask_convert", lambda question: asked.append(question) or True)
    window.model_panel.mode_combo.setCurrentIndex(window.model_panel.mode_combo.findData("label"))
    assert canvas.mode == "label" and asked and "label maps" in asked[0]
    colors = {tuple(c) for c in canvas.to_numpy().reshape(-1, 3)}
    assert len(colors) == 2 and colors <= {tuple(c) for c in canvas.label_palette.colors}  # converted, not wiped
    canvas.undo()
    assert np.array_equal(canvas.to_numpy(), drawn)
    canvas.redo()
    monkeypatch.setattr(window, "ask_convert", lambda question: False)  # "start a blank page"
    window.model_panel.mode_combo.setCurrentIndex(window.model_panel.mode_combo.findData("edges"))
    assert (canvas.to_numpy() == 255).all()


def test_a_label_map_survives_loading_another_model_of_its_palette(window, monkeypatch):
    monkeypatch.setattr(window, "ask_convert", lambda question: pytest.fail(f"asked: {question}"))
    window.set_session(session("spade"))  # facades palette
    canvas = window.canvas
    assert canvas.mode == "label"
    colors = np.asarray(canvas.label_palette.colors, np.uint8)
    labels = colors[np.arange(64 * 64).reshape(64, 64) // 512 % len(colors)]
    canvas.load_image(labels)
    window.set_session(session("pix2pix", palette="facades"))  # a label model of the same palette
    assert canvas.mode == "label" and np.array_equal(canvas.to_numpy(), labels)
    window.set_session(session("spade"))
    assert np.array_equal(canvas.to_numpy(), labels)


def test_shapes_are_filled_by_default_for_label_maps(window, qtbot):
    canvas = window.canvas
    window._set_canvas_mode("label")
    canvas.set_tool("rectangle")
    assert canvas.fill_shapes and window.actions_by_name["fill_shapes"].isChecked()
    drag(qtbot, canvas, (10, 10), (40, 40))
    pixels = canvas.to_numpy()
    assert pixels[25, 25].tolist() == list(canvas.color)  # the inside is painted: a solid region
    assert pixels[25, 10].tolist() == pixels[25, 40].tolist() == list(canvas.color)  # exactly the dragged box
    assert pixels[25, 9].tolist() == pixels[25, 41].tolist() == list(canvas.background_color)  # no pen rim
    window._set_canvas_mode("edges")
    assert not canvas.fill_shapes and not window.actions_by_name["fill_shapes"].isChecked()


def test_the_tool_bar_keeps_its_width_across_actions(window, qtbot):
    canvas = window.canvas
    widths = {window.tool_bar.width()}
    x = canvas.pos().x()
    for tool in ("brush", "rectangle", "ellipse", "fill", "line"):
        canvas.set_tool(tool)
        drag(qtbot, canvas, (5, 5), (50, 40))
        qtbot.wait(1)
        QApplication.processEvents()
        widths.add(window.tool_bar.width())
    canvas.undo()
    QApplication.processEvents()
    widths.add(window.tool_bar.width())
    assert len(widths) == 1 and canvas.pos().x() == x
    assert window.tool_bar.actions()  # Undo/Redo name their action in the tooltip instead
    undo = next(a for a in window.tool_bar.actions() if a.text() == "Undo")
    assert undo.toolTip().startswith("Undo ")


def test_tool_keys_work_while_the_draw_as_box_has_focus(window, qtbot):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    combo = window.model_panel.mode_combo
    combo.setEnabled(True)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    mode = combo.currentData()
    qtbot.keyClick(combo, Qt.Key.Key_E)
    assert window.canvas.tool == "eraser" and combo.currentData() == mode
    qtbot.keyClick(combo, Qt.Key.Key_R)
    assert window.canvas.tool == "rectangle"


def test_zoom_keys_zoom_in_out_to_100_percent_and_back_to_fit(window, qtbot):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    canvas = window.canvas
    ctrl = Qt.KeyboardModifier.ControlModifier
    fitted = canvas.zoom
    assert fitted != pytest.approx(1.0)  # so 100 % is a change
    qtbot.keyClick(canvas, Qt.Key.Key_Plus, ctrl)
    assert canvas.zoom == pytest.approx(fitted * 1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, ctrl)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, ctrl)
    assert canvas.zoom == pytest.approx(fitted / 1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_1, ctrl)
    assert canvas.zoom == pytest.approx(1.0)  # 100 %: one pixel per screen pixel
    qtbot.keyClick(canvas, Qt.Key.Key_0, ctrl)
    assert canvas.zoom == pytest.approx(fitted)


def test_the_wheel_scrolls_the_latent_dock_not_the_slider_under_it(qtbot):
    from desktop.latent.panel import LatentPanel

    panel = LatentPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 200)  # shorter than its content: it scrolls
    panel.show()
    qtbot.waitExposed(panel)
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0
    slider = next(s for s in panel.findChildren(QSlider) if s.isVisible())
    value, position = slider.value(), bar.value()
    centre = QPointF(slider.width() / 2, slider.height() / 2)
    event = QWheelEvent(centre, slider.mapToGlobal(centre), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(slider, event)
    assert slider.value() == value and bar.value() > position


def test_help_menu_lists_shortcuts_and_bundled_cards(window, tmp_path):
    from desktop.help_menu import about_html, bundled_cards, shortcuts_html

    texts = [a.text() for a in window.menus["help"].actions()]
    assert texts == ["User guide", "Keyboard shortcuts", "", "About Ganvas"]
    shortcuts = shortcuts_html(window)
    assert "Rectangle" in shortcuts and "Zoom in" in shortcuts and "Filled" in shortcuts
    assert "None in this copy" in about_html(bundled_cards(tmp_path / "none"))
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "facades.json").write_text('{"title": "Facades: labels -> photo", '
                                                     '"dataset": "CMP Facade Database", "licence": "research use"}')
    about = about_html(bundled_cards(tmp_path / "cards"))
    assert "Facades: labels -&gt; photo" in about and "CMP Facade Database" in about and "research use" in about


def test_export_at_4x_follows_the_drawing(window, qtbot, tmp_path, monkeypatch, engine_api):
    from PySide6.QtWidgets import QFileDialog

    window.set_session(session("spade"))
    qtbot.waitUntil(window.output_view.has_output, timeout=30000)
    assert window.start_folder() == str(Path.home())  # no project file yet
    target = tmp_path / "out.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG at 4x (*.png)"))
    window.save_output()
    output = window.output_view.output_array()
    saved = engine_api.read_image(target)
    assert saved.shape == (output.shape[0] * 4, output.shape[1] * 4, 3)
    assert np.abs(saved[::4, ::4].astype(int) - output.astype(int)).mean() < 12  # the same picture, enlarged


def test_file_dialogs_start_in_the_project_folder(window, tmp_path, monkeypatch):
    """The export, open-image and latent editor dialogs start beside the saved project."""
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "project"
    folder.mkdir()
    assert window.projects.save_to(folder / "facade.ganvas")
    window.set_session(session("pix2pix"))
    window.output_view.set_output(np.zeros((64, 64, 3), np.uint8))
    starts = []

    def cancelled(_parent, _title, start, *_):
        starts.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", cancelled)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", cancelled)
    window.save_output()
    window.open_image()
    assert starts == [str(folder / "facade_output.png"), str(folder)]
    assert window.latent_editor.panel.start_folder("seed0.png") == str(folder / "seed0.png")  # its dialogs too
