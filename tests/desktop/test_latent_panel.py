"""The StyleGAN2 latent editor: live sliders, latent files, cancellable projection, animation export, and
how the main window switches to it (on a tiny untrained generator)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog

from desktop.engine_loader import import_engine
from desktop.latent import directions as latent_directions
from desktop.latent import projection as latent_projection
from desktop.latent.panel import LatentPanel
from desktop.latent.session import build_latent_session
from desktop.main_window import MainWindow
from desktop.model_panel import ModelSource

pytestmark = pytest.mark.gui
TINY = {"resolution": 32, "z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 512, "channel_max": 32}


@pytest.fixture(scope="module")
def session():
    return build_latent_session(ModelSource("tiny stylegan2", family="stylegan2", config=TINY), "cpu")


@pytest.fixture(autouse=True)
def _few_pca_samples(monkeypatch):
    monkeypatch.setattr(latent_directions, "PCA_SAMPLES", 512)


@pytest.fixture
def panel(qtbot, session) -> LatentPanel:
    widget = LatentPanel()
    qtbot.addWidget(widget)
    widget.set_session(session)
    qtbot.waitUntil(lambda: widget.directions is not None and widget.model.settled(), timeout=20000)
    yield widget
    widget.shutdown()


def changed_image(qtbot, panel: LatentPanel, before: np.ndarray) -> np.ndarray:
    qtbot.waitUntil(panel.model.settled, timeout=10000)
    after = panel.shown_image()
    assert after.shape == before.shape and not np.array_equal(after, before)
    return after


def test_psi_direction_and_seed_change_the_image(qtbot, panel):
    image = panel.shown_image()
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    with qtbot.waitSignal(panel.image_ready, timeout=10000):
        panel.seed_section.psi_slider.slider.setValue(20)  # psi 0.2
    image = changed_image(qtbot, panel, image)
    assert panel.state().psi == pytest.approx(0.2)
    assert all(slider.isEnabled() for slider in panel.directions_section.sliders)
    panel.directions_section.sliders[0].slider.setValue(30)  # strength +3
    image = changed_image(qtbot, panel, image)
    panel.seed_section.seed_box.setValue(7)
    changed_image(qtbot, panel, image)


def test_saving_then_loading_a_latent_restores_the_image(qtbot, panel, tmp_path):
    panel.seed_section.seed_box.setValue(3)
    panel.mixing_section.setChecked(True)
    panel.directions_section.sliders[1].set_value(-2.0)
    qtbot.waitUntil(panel.model.settled, timeout=10000)
    saved_image = panel.shown_image()
    path = panel.files_section.save_latent(str(tmp_path / "edited"))
    assert path == tmp_path / "edited.npz" and path.is_file()
    panel.seed_section.seed_box.setValue(4)
    changed_image(qtbot, panel, saved_image)
    assert panel.files_section.load_latent(str(path))
    qtbot.waitUntil(panel.model.settled, timeout=10000)
    np.testing.assert_array_equal(panel.shown_image(), saved_image)
    assert panel.state().psi == 1.0 and not any(panel.state().strengths) and not panel.mixing_section.isChecked()
    assert "edited.npz" in panel.seed_section.base_label.text()


def test_style_group_menu_sets_the_mixed_layers(qtbot, panel):
    layers = panel.mixing_section.layers
    names = [layers.group.itemText(i) for i in range(layers.group.count())]
    assert names == ["custom", "coarse (4-8 px)", "middle (16-32 px)", "all (4-32 px)"]  # 32 px: no fine layers
    panel.mixing_section.setChecked(True)
    qtbot.waitUntil(panel.model.settled, timeout=10000)
    before = panel.shown_image()
    with qtbot.waitSignal(layers.changed, timeout=1000):
        layers.group.activated.emit(1)
    assert layers.half_open() == (0, 3) == panel.state().mix_layers
    changed_image(qtbot, panel, before)
    layers.end.setValue(7)
    assert layers.group.currentText() == "all (4-32 px)"
    layers.start.setValue(3)
    assert layers.group.currentText() == "middle (16-32 px)"
    layers.end.setValue(5)
    assert layers.group.currentText() == "custom"


def test_projection_reports_progress_and_can_be_cancelled(qtbot, panel):
    projection = panel.projection_section
    projection.steps_box.setValue(500)
    before = panel.shown_image()
    target = np.full((40, 40, 3), 200, np.uint8)
    with qtbot.waitSignal(panel.busy_changed, timeout=5000):
        job = projection.start_projection(target, "grey")
    assert job is not None and not projection.project_button.isEnabled() and projection.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: projection.last_projection_event is not None, timeout=40000)
    assert projection.last_projection_event.kind == "step" and projection.progress.maximum() == 500
    projection.cancel_button.click()
    qtbot.waitUntil(lambda: projection.projection is None, timeout=20000)
    last = projection.last_projection_event
    assert last.kind == "stopped" and last.step < 500
    assert projection.project_button.isEnabled() and not projection.cancel_button.isEnabled()
    np.testing.assert_array_equal(panel.shown_image(), before)  # a cancelled projection is discarded


def test_projection_with_lpips_weights_and_a_refused_weight_file(qtbot, panel, tmp_path, monkeypatch):
    import torch

    from models.lpips import vgg16_features

    projection = panel.projection_section
    vgg = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    torch.save(vgg, tmp_path / "vgg16.pth")
    projection.set_lpips_weights(str(tmp_path / "vgg16.pth"))
    assert projection.lpips_check.isChecked() and projection.lpips_button.text() == "vgg16.pth"
    used = []
    project = panel.session.project

    def spy(*args, **kwargs):
        used.append(kwargs.get("perceptual"))
        return project(*args, **kwargs)

    monkeypatch.setattr(panel.session, "project", spy)
    projection.steps_box.setValue(3)
    job = projection.start_projection(np.full((40, 40, 3), 200, np.uint8), "grey")
    qtbot.waitUntil(lambda: projection.projection is None, timeout=40000)
    assert job is not None and projection.last_projection_event.kind == "done"
    assert torch.equal(used[0].features[28].weight, vgg["features.28.weight"])  # the user's file, in the loss
    errors: list[str] = []
    monkeypatch.setattr(latent_projection.QMessageBox, "critical", lambda parent, title, text: errors.append(text))
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, tmp_path / "resnet.pth")
    projection.set_lpips_weights(str(tmp_path / "resnet.pth"))
    projection.start_projection(np.full((40, 40, 3), 200, np.uint8), "grey")
    qtbot.waitUntil(lambda: projection.projection is None, timeout=20000)
    assert len(errors) == 1 and "resnet.pth" in errors[0] and "VGG16" in errors[0]
    projection.set_lpips_weights(None)
    assert not projection.lpips_check.isEnabled() and not projection.lpips_check.isChecked()


def test_interpolation_plays_and_exports_a_gif(qtbot, panel, tmp_path, monkeypatch):
    panel.interpolation_section.frames_box.setValue(4)
    shown = []
    panel.image_ready.connect(lambda image, _ms: shown.append(image))
    panel.interpolation_section.play_button.click()
    qtbot.waitUntil(lambda: panel.interpolation_section.is_playing() and len(shown) >= 3, timeout=10000)
    assert len(panel.interpolation_section.frames) == 6  # 4 frames there and 2 back
    panel.interpolation_section.play_button.click()
    assert not panel.interpolation_section.is_playing() and panel.interpolation_section.play_button.text() == "Play"
    target = tmp_path / "walk"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "GIF animation (*.gif)"))
    panel.interpolation_section.export_animation()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10000)
    gif = tmp_path / "walk.gif"
    assert gif.is_file() and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")


def test_main_window_switches_to_the_latent_editor_and_back(qtbot, tmp_path, session):
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=False)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    window.on_engine_ready(import_engine())
    assert "Untrained stylegan2 (random weights)" in [s.label for s in window.model_panel.sources()]
    editor = window.latent_editor
    assert not editor.dock.isVisible()
    window.set_session(session)
    qtbot.waitUntil(window.output_view.has_output, timeout=20000)
    assert editor.dock.isVisible() and not window.canvas.isVisible() and not window.palette_dock.isVisible()
    assert window.output_view.image_rect().width() > 32  # fitted to the view, not the canvas's size
    assert not window.output_panel.use_button.isEnabled() and window.output_panel.save_button.isEnabled()
    assert not window.output_panel.compare_box.isEnabled() and not window.actions_by_name["compare"].isEnabled()
    assert "stylegan2" in window.model_panel.card.toPlainText()
    from engine.infer.inference import InferenceSession

    window.set_session(InferenceSession.untrained("pix2pix", size=(64, 64), device="cpu", depth=6, ngf=4, ndf=4))
    assert not editor.dock.isVisible() and window.canvas.isVisible() and window.palette_dock.isVisible()
    assert window.actions_by_name["compare"].isEnabled()
    assert editor.panel.session is None
    window.close()
