"""The main window: usable before the engine is ready, live output, model errors, output actions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.engine_loader import import_engine
from desktop.main_window import MainWindow
from desktop.model_panel import ModelSource

pytestmark = pytest.mark.gui
LEFT = Qt.MouseButton.LeftButton
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine_api():
    return import_engine()


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, settings, **kwargs) -> MainWindow:
    window = MainWindow(settings=settings, **{"start_engine": False, "autoload": False, **kwargs})
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    return window


def tiny_session(family: str = "pix2pix"):
    from engine.infer.inference import InferenceSession

    if family == "cyclegan":
        return InferenceSession.untrained("cyclegan", size=(64, 64), device="cpu", ngf=4, ndf=4, n_blocks=1)
    return InferenceSession.untrained("pix2pix", size=(64, 64), device="cpu", depth=6, ngf=4, ndf=4)


def tiny_checkpoint(path: Path) -> Path:
    """A 64 px pix2pix generator (depth 6, ngf 4) with fresh weights, saved as a checkpoint at ``path``."""
    from engine.core.checkpoint import save_checkpoint
    from engine.families.pix2pix.family import Pix2Pix, Pix2PixConfig

    config = Pix2PixConfig(depth=6, ngf=4, ndf=4)
    weights = {f"net.G.{k}": v for k, v in Pix2Pix.build_generator(config).state_dict().items()}
    return save_checkpoint(path, weights, {"family": "pix2pix", "model_config": vars(config),
                                           "train_config": {"size": [64, 64]}, "step": 5})


def stroke(qtbot, canvas, points) -> None:
    """A mouse stroke through image points (converted with the canvas's current view)."""
    def widget_point(x, y):
        return QPoint(round(canvas.offset.x() + (x + 0.5) * canvas.zoom),
                      round(canvas.offset.y() + (y + 0.5) * canvas.zoom))
    qtbot.mousePress(canvas, LEFT, Qt.KeyboardModifier.NoModifier, widget_point(*points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(canvas, widget_point(x, y))
    qtbot.mouseRelease(canvas, LEFT, Qt.KeyboardModifier.NoModifier, widget_point(*points[-1]))


def with_output(qtbot, window, session=None) -> MainWindow:
    window.set_session(session or tiny_session())
    qtbot.waitUntil(window.output_view.has_output, timeout=10000)
    return window


def test_gui_modules_import_no_torch():
    code = ("import sys, desktop.app, desktop.main_window, desktop.inference_worker; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


def test_window_and_canvas_work_before_the_engine_is_ready(qtbot, settings):
    window = make_window(qtbot, settings)
    assert window.engine is None and window.session is None
    assert "Loading engine" in window.statusBar().currentMessage()
    assert not window.model_panel.open_button.isEnabled()
    assert not window.actions_by_name["open_checkpoint"].isEnabled()
    assert not window.output_panel.save_button.isEnabled()
    before = window.canvas.to_numpy()
    window.canvas.set_view(2.0, window.canvas.offset)
    stroke(qtbot, window.canvas, [(20, 20), (60, 40), (100, 40)])
    assert (window.canvas.to_numpy() != before).any()
    assert window.output_view.image_rect().width() == pytest.approx(window.canvas.document.size().width() * 2)


def test_engine_ready_enables_models_and_lists_input_families(qtbot, settings, engine_api):
    window = make_window(qtbot, settings)
    with qtbot.waitSignal(window.engine_ready, timeout=5000):
        window.on_engine_ready(engine_api)
    assert window.model_panel.open_button.isEnabled()
    labels = [s.label for s in window.model_panel.sources()]
    assert "Untrained pix2pix (random weights)" in labels
    assert "Untrained stylegan2 (random weights)" in labels  # opens the latent editor


def test_a_stroke_updates_the_live_output(qtbot, settings):
    window = with_output(qtbot, make_window(qtbot, settings))
    assert window.canvas.document.size().width() == 64  # the model's native size
    assert window.canvas.mode == "edges" and window.model_panel.draw_mode == "edges"
    assert "ms/frame" in window.ms_label.text()
    first_shown = window._shown_id
    stroke(qtbot, window.canvas, [(5, 5), (30, 20), (50, 50)])
    qtbot.waitUntil(lambda: window._shown_id == window.worker.last_request_id > first_shown, timeout=10000)
    output = window.output_view.output_array()
    assert output.shape == (64, 64, 3) and output.dtype == np.uint8
    stale = window.output_view.output_array()
    window._on_result(type("R", (), {"request_id": first_shown, "image": 255 - stale, "elapsed_ms": 1.0,
                                     "session": window.session, "preview": False})())
    assert np.array_equal(window.output_view.output_array(), stale)  # an older frame is dropped


def test_previews_while_the_pen_is_down_and_the_full_pass_on_pen_up(qtbot, settings):
    window = with_output(qtbot, make_window(qtbot, settings))
    requests = []
    submit = window.worker.submit

    def recording_submit(image, options=None, preview=False):
        requests.append(preview)
        return submit(image, options, preview=preview)

    window.worker.submit = recording_submit
    window.session.preview_budget_ms = 0.0  # force coarse previews even for this tiny model
    stroke(qtbot, window.canvas, [(5, 5), (20, 10), (30, 20), (50, 50)])
    assert requests[:3] == [True, True, True] and requests[-1] is False
    qtbot.waitUntil(lambda: window._shown_id == window.worker.last_request_id, timeout=10000)
    assert "preview" not in window.ms_label.text()  # the last frame shown is the full pass


def test_cyclegan_enables_the_direction_option(qtbot, settings, engine_api):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    with_output(qtbot, window, tiny_session("cyclegan"))
    assert window.style_panel.direction.isEnabled()
    assert window.style_panel.options() == {"direction": "AtoB"}
    assert not window.style_panel.seed.isEnabled()


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"\x89PNG\r\n\x1a\n" + bytes(64)])
def test_bad_checkpoint_shows_a_message_and_the_window_stays(qtbot, settings, engine_api, tmp_path, monkeypatch,
                                                             content):
    calls = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: calls.append(args) or QMessageBox.StandardButton.Ok)
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    session = tiny_session()
    window.set_session(session)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    window.load_model(ModelSource("bad", str(bad)))
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=10000)
    assert "bad.safetensors" in calls[0][2]
    assert window.isVisible() and window.session is session
    assert window.model_panel.load_button.isEnabled() or window.model_panel.open_button.isEnabled()


def test_the_model_asked_for_last_wins(qtbot, settings, engine_api, tmp_path, monkeypatch):
    """Models picked while one loads are not dropped: the last one asked for ends up in use, and the failure of
    a superseded load shows no dialog."""
    calls = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: calls.append(args) or QMessageBox.StandardButton.Ok)
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    window.load_model(ModelSource("bad", str(bad)))  # loads in a worker thread; the next two arrive meanwhile
    window.load_model(ModelSource.from_key("untrained:cyclegan"))
    window.load_model(ModelSource.from_key("untrained:pix2pix"))
    assert window.statusBar().currentMessage() == "Loading Untrained pix2pix (random weights)..."
    qtbot.waitUntil(lambda: window.session is not None, timeout=30000)
    qtbot.wait(200)
    assert window.recent_models() == ["untrained:pix2pix"]
    assert window._loading is None and calls == []


def test_save_output_writes_a_png(qtbot, settings, engine_api, tmp_path, monkeypatch):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    with_output(qtbot, window)
    target = tmp_path / "out"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kw: (str(target), "PNG images (*.png)"))
    window.output_panel.save_button.click()
    saved = engine_api.read_image(tmp_path / "out.png")
    assert np.array_equal(saved, window.output_view.output_array())
    # the size chosen is offered again next time
    offered = []

    def save_at_2x(*args, **kw):
        offered.append(args[4] if len(args) > 4 else "")
        return str(tmp_path / "big.png"), "PNG at 2x (*.png)"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_at_2x)
    window.output_panel.save_button.click()
    window.output_panel.save_button.click()
    assert offered == ["", "PNG at 2x (*.png)"]
    height, width = window.output_view.output_array().shape[:2]
    assert engine_api.read_image(tmp_path / "big.png").shape[:2] == (2 * height, 2 * width)


def test_use_output_as_input_is_undoable(qtbot, settings):
    window = with_output(qtbot, make_window(qtbot, settings))
    before = window.canvas.to_numpy()
    output = window.output_view.output_array()
    window.output_panel.use_button.click()
    assert np.array_equal(window.canvas.to_numpy(), output)
    window.canvas.undo_action.trigger()
    assert np.array_equal(window.canvas.to_numpy(), before)


def test_layout_and_recent_models_persist(qtbot, settings, engine_api):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    window.load_model(ModelSource.from_key("untrained:pix2pix"))
    qtbot.waitUntil(lambda: window.session is not None, timeout=30000)
    window.model_dock.hide()
    window.close()
    assert window.recent_models() == ["untrained:pix2pix"]
    again = make_window(qtbot, settings)
    assert again.model_dock.isHidden()


def _write_png(path, rgb) -> str:
    import cv2

    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return str(path)


def test_a_photo_opened_while_a_model_loads_waits_for_its_drawing_mode(qtbot, settings, engine_api, tmp_path):
    """Opened before the first model arrives, a photo is not turned into the start-up canvas's edges: it opens
    once the model (here CycleGAN, which takes photos) has set what the canvas draws."""
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    assert window.canvas.mode == "edges"
    y, x = np.mgrid[0:48, 0:48]
    photo = np.stack([x * 5, y * 5, np.full_like(x, 100)], axis=2).astype(np.uint8)
    window.load_model(ModelSource.from_key("untrained:cyclegan"))
    assert window.import_image(_write_png(tmp_path / "photo.png", photo))
    assert "opens when the model has loaded" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.session is not None and window._import_after_load is None, timeout=30000)
    assert window.canvas.mode == "photo"
    assert len(np.unique(window.canvas.to_numpy())) > 2  # the photo itself, not black-and-white edges


def test_importing_a_photo_makes_edges_and_a_label_map_reports_foreign_colours(qtbot, settings, engine_api,
                                                                                tmp_path, monkeypatch):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    y, x = np.mgrid[0:48, 0:48]
    photo = np.stack([x * 5, y * 5, np.full_like(x, 100)], axis=2).astype(np.uint8)
    photo[12:36, 12:36] //= 3
    window.canvas.set_mode("edges")
    before = window.canvas.to_numpy()
    assert window.import_image(_write_png(tmp_path / "photo.png", photo))
    edges = window.canvas.to_numpy()
    assert edges.shape == (48, 48, 3) and set(np.unique(edges)) == {0, 255}  # Canny edges, black on white
    assert "Canny" in window.statusBar().currentMessage()
    window.canvas.undo()
    assert np.array_equal(window.canvas.to_numpy(), before)  # one undo step

    warnings = []
    monkeypatch.setattr("desktop.main_window.show_unknown_colours", lambda parent, text: warnings.append(text))
    window._set_canvas_mode("label")  # the facades palette
    colors = [tuple(c) for c in window.canvas.label_palette.colors]
    labels = np.zeros((32, 32, 3), np.uint8)
    labels[:] = colors[1]
    labels[:8, :8] = (250, 250, 250) if (250, 250, 250) not in colors else (3, 250, 3)
    assert window.import_image(_write_png(tmp_path / "labels.png", labels))
    assert {tuple(c) for c in window.canvas.to_numpy().reshape(-1, 3)} <= set(colors)
    assert len(warnings) == 1 and "labels.png" in warnings[0] and "<b>facades</b> palette" in warnings[0]
    assert "rgb(250, 250, 250)" in warnings[0] and 'bgcolor="#fafafa"' in warnings[0]  # a swatch of the colour
    nearest = window.canvas.label_palette.names  # ... and of the class it became, by name
    assert any(f"<td>{name}</td>" in warnings[0] for name in nearest)
    assert "<td>&rarr;</td><td><table" in warnings[0]  # the class's swatch in a cell of its own, beside its name

    pair = np.concatenate([photo[:32, :32], labels], axis=1)  # photo | label map, as in facades
    halves = []
    monkeypatch.setattr(window, "ask_half", lambda name, suggested: halves.append(suggested) or "right")
    assert window.import_image(_write_png(tmp_path / "pair.png", pair))
    assert halves == ["right"] and window.canvas.to_numpy().shape == (32, 32, 3)


def test_dropping_an_image_file_loads_it_into_the_canvas(qtbot, settings, engine_api, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    window.canvas.set_mode("photo")
    picture = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(_write_png(tmp_path / "dropped.png", picture))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert np.array_equal(window.canvas.to_numpy(), picture)  # photo mode keeps the image
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, LEFT,
                                Qt.KeyboardModifier.NoModifier))
    assert np.array_equal(window.canvas.to_numpy(), picture)  # not an image: ignored


def test_cyclegan_models_draw_on_a_photo_canvas(qtbot, settings, engine_api):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    with_output(qtbot, window, tiny_session("cyclegan"))
    assert window.canvas.mode == "photo" and window.model_panel.draw_mode == "photo"
    assert window.palette_panel.color_button.isVisibleTo(window.palette_panel)


def test_spade_style_controls_seed_new_style_and_style_image(qtbot, settings, engine_api, tmp_path):
    from engine.infer.inference import InferenceSession

    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    tiny = {"image_size": (64, 64), "ngf": 4, "ndf": 4, "spade_hidden": 8, "z_dim": 8}
    with_output(qtbot, window, InferenceSession.untrained("spade", size=(64, 64), device="cpu", **tiny))
    style = window.style_panel
    assert not style.seed.isEnabled() and not style.style_image.isEnabled()  # no encoder: deterministic
    assert "no style options" in style.note.text()

    session = InferenceSession.untrained("spade", size=(64, 64), device="cpu", use_encoder=True, **tiny)
    with torch_no_grad():  # a visible effect of the style code on this untrained network
        session.generator.G.head.weight.mul_(50)
    with_output(qtbot, window, session)
    assert style.seed.isEnabled() and style.new_style.isEnabled() and style.style_image.isEnabled()
    assert "style image" in style.note.text() and style.options() == {"seed": 0}

    def shown_after(action) -> np.ndarray:
        last = window.worker.last_request_id
        action()
        qtbot.waitUntil(lambda: window._shown_id == window.worker.last_request_id > last, timeout=10000)
        return window.output_view.output_array()

    seeded = window.output_view.output_array()
    renewed = shown_after(style.new_style.click)
    assert style.seed.value() != 0 and np.abs(renewed.astype(int) - seeded).mean() > 0.5
    photo = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    styled = shown_after(lambda: window.set_style_image_file(_write_png(tmp_path / "style.png", photo)))
    assert "style" in style.options() and "seed" not in style.options() and style.clear_style.isEnabled()
    assert np.abs(styled.astype(int) - renewed).mean() > 0.5
    back = shown_after(style.clear_style.click)
    assert style.options() == {"seed": style.seed.value()} and np.array_equal(back, renewed)


def torch_no_grad():
    import torch

    return torch.no_grad()


def test_number_keys_pick_palette_entries_and_canvas_size_presets(qtbot, settings, engine_api):
    window = make_window(qtbot, settings)
    window.on_engine_ready(engine_api)
    window.canvas.set_mode("label")
    window.palette_panel.set_mode("label")
    colors = [tuple(c) for c in window.canvas.label_palette.colors]
    window.activateWindow()  # window-wide shortcuts need the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_3)
    assert window.canvas.color == colors[2]
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    assert window.canvas.color == colors[0]

    with_output(qtbot, window)  # pix2pix: inputs are resized to its native size
    assert [size for _, size in window.canvas_size_presets()] == [(64, 64)]
    with_output(qtbot, window, tiny_session("cyclegan"))  # fully convolutional: larger, non-square sizes
    sizes = [size for _, size in window.canvas_size_presets()]
    assert sizes[0] == (64, 64) and (768, 512) in sizes and (512, 768) in sizes
    menu = window.menus["canvas_size"]
    menu.aboutToShow.emit()
    landscape = next(a for a in menu.actions() if a.text().startswith("768 x 512"))
    landscape.trigger()
    assert window.canvas.to_numpy().shape == (512, 768, 3)
    window.canvas.undo()
    assert window.canvas.to_numpy().shape == (64, 64, 3)


def test_a_backend_that_cannot_take_the_model_falls_back_to_torch_with_a_status_message(
        qtbot, settings, engine_api, tmp_path, monkeypatch):
    import engine.infer.backends
    from engine.core.errors import BackendError

    path = tiny_checkpoint(tmp_path / "p2p.safetensors")

    def refuse(self, name, arrays):  # what a backend says of an op it lacks (the engine tests export for real)
        raise BackendError(f"openvino cannot compile the {name} graph (Exception: unsupported operation)")

    monkeypatch.setattr(engine.infer.backends.CompiledGraphs, "_compile", refuse)
    window = make_window(qtbot, settings)
    window.preferences.backend = "openvino"
    window.on_engine_ready(engine_api)
    window.load_model(ModelSource("p2p", str(path)))
    qtbot.waitUntil(lambda: window.session is not None and window.session.card.path == str(path), timeout=120000)
    assert window.session.backend == "torch"
    assert window.statusBar().currentMessage() == ("backend openvino failed, using torch (openvino cannot "
                                                   "compile the generator graph (Exception: unsupported operation))")
    qtbot.waitUntil(window.output_view.has_output, timeout=60000)
