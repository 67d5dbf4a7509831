"""First launch: the app opens on the bundled facades model, its sample drawing and a photo that follows it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from desktop.engine_loader import import_engine
from desktop.main_window import MainWindow
from desktop.model_panel import BUNDLED_GROUP, UNTRAINED_GROUP, sample_drawing

pytestmark = pytest.mark.gui


def label_structure(drawing: np.ndarray, output: np.ndarray) -> float:
    """Share of the output's colour variance explained by the drawing's label regions (0 = noise, 1 = flat
    regions that follow the labels exactly). A photo of the drawn facade scores far above an untrained network."""
    keys = drawing.reshape(-1, 3).astype(np.int64) @ np.array([65536, 256, 1])
    pixels = output.reshape(-1, 3).astype(np.float64)
    mean = pixels.mean(0)
    total = ((pixels - mean) ** 2).sum()
    between = sum(((pixels[keys == k].mean(0) - mean) ** 2).sum() * (keys == k).sum() for k in np.unique(keys))
    return float(between / total)


def test_first_launch_opens_on_the_bundled_facades_model_and_its_sample(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=True)
    qtbot.addWidget(window)
    window.show()
    api = import_engine()
    window.on_engine_ready(api)
    qtbot.waitUntil(lambda: window.session is not None, timeout=60000)
    qtbot.waitUntil(window.output_view.has_output, timeout=60000)
    card = window.session.card
    assert card.title == "Facades: label map -> photo" and card.draw_as == "label"
    assert window.canvas.mode == "label" and window.model_panel.draw_mode == "label"
    drawing = api.read_image(sample_drawing("facade_labels.png"))
    assert np.array_equal(window.canvas.to_numpy(), drawing)
    qtbot.waitUntil(lambda: window._shown_id == window.worker.last_request_id, timeout=30000)
    assert label_structure(drawing, window.output_view.output_array()) >= 0.25
    # the panel lists bundled models by card title first, the untrained networks last
    groups = [window.model_panel.tree.topLevelItem(i).text(0) for i in range(window.model_panel.tree.topLevelItemCount())]
    assert groups[0] == BUNDLED_GROUP and groups[-1] == UNTRAINED_GROUP
    titles = [window.model_panel.tree.topLevelItem(0).child(i).text(0)
              for i in range(window.model_panel.tree.topLevelItem(0).childCount())]
    assert "Facades: label map -> photo" in titles
    untrained = api.untrained_model("pix2pix", size=(256, 256), device="cpu", ngf=16, ndf=16)
    assert label_structure(drawing, untrained.translate(drawing)) < 0.1  # the check tells noise from a photo


def test_a_damaged_bundled_model_is_named_and_the_app_still_opens(qtbot, tmp_path):
    import dataclasses

    from engine.core.bundled import read_bundled

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!")
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=False)
    qtbot.addWidget(window)
    window.show()
    api = import_engine()
    window.on_engine_ready(dataclasses.replace(api, bundled=(*api.bundled, read_bundled(broken))))
    assert "broken.safetensors" in window.statusBar().currentMessage()
    assert "broken.safetensors" in window.model_panel.status.text()
    group = window.model_panel.tree.topLevelItem(0)
    names = [group.child(i).text(0) for i in range(group.childCount())]
    assert "broken (damaged)" in names and window.isVisible()


def test_every_bundled_model_opens_in_its_own_draw_mode(qtbot, tmp_path):
    """Loaded from the panel, each bundled model sets the canvas to the mode its card names (its palette for
    label maps), and a blank canvas gets the card's sample drawing."""
    from desktop.model_panel import ModelSource

    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=False)
    qtbot.addWidget(window)
    window.show()
    api = import_engine()
    window.on_engine_ready(api)
    for model in api.bundled:
        window.canvas.clear()
        window.load_model(ModelSource(model.title, str(model.path)))
        qtbot.waitUntil(lambda m=model: window.session is not None and window.session.card.path == str(m.path),
                        timeout=60000)
        mode = model.card["draw_mode"]
        assert window.model_label.text() == f"model: {model.title}", model.name  # named by its card, not its file
        if mode == "latent":  # nothing to draw: the latent editor takes over the window
            assert window.latent_editor.active and not window.canvas.isVisibleTo(window), model.name
            continue
        assert window.canvas.mode == mode and window.model_panel.draw_mode == mode, model.name
        if mode == "label":
            assert window.canvas.label_palette is not None
        if model.card.get("sample"):  # the cleared canvas shows the model's sample drawing
            sample = api.read_image(sample_drawing(model.card["sample"]))
            qtbot.waitUntil(lambda s=sample: np.array_equal(window.canvas.to_numpy(), s), timeout=10000)
