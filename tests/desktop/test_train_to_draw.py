"""The train -> draw loop in the app: a tiny run trained from the training window comes back to the canvas in
the mode and palette it was trained for, named after its run, and listed under "Your models"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from desktop.engine_loader import import_engine  # noqa: E402
from desktop.main_window import MainWindow  # noqa: E402
from desktop.training.runs_list import SETTINGS_KEY, RunsList  # noqa: E402
from engine.core.imageio import write_image  # noqa: E402
from engine.data.palette import Palette  # noqa: E402

pytestmark = pytest.mark.gui
SIZE = 32


def write_photo_label_pairs(folder: Path, count: int = 3) -> Path:
    """facades-like A|B pairs: A a noisy photo, B a label map of blocks in the facades palette."""
    colors = Palette.load("facades").colors
    rng = np.random.default_rng(0)
    for index in range(count):
        ids = rng.integers(1, len(colors), (4, 4)).repeat(SIZE // 4, 0).repeat(SIZE // 4, 1)
        labels = colors[ids]
        photo = np.clip(labels.astype(int) // 2 + rng.integers(0, 120, labels.shape), 0, 255).astype(np.uint8)
        write_image(folder / "train" / f"{index}.png", np.concatenate([photo, labels], axis=1))
    return folder


@pytest.fixture
def settings(tmp_path) -> QSettings:
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_KEY, str(tmp_path / "runs"))
    settings.setValue("preferences/models_folder", str(tmp_path / "models"))
    return settings


@pytest.mark.timeout(900)  # a real training process: minutes when the machine is loaded
def test_a_run_trained_in_the_window_draws_in_its_mode_and_palette(qtbot, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = write_photo_label_pairs(tmp_path / "data")
    window = MainWindow(settings=settings, start_engine=False, autoload=False, recovery_dir=tmp_path / "rec")
    qtbot.addWidget(window)
    window.on_engine_ready(import_engine())
    window.open_training()
    training = window.training_window
    qtbot.addWidget(training)

    with qtbot.waitSignal(training.dataset_page.dataset_checked, timeout=120000) as checked:
        training.dataset_page.check(str(data))
    report = checked.args[1]
    assert report.sides == {"A": "photo", "B": "label"} and report.palette == "facades"
    assert any("no validation split" in note for note in report.notes)
    form = training.form
    assert form.direction == "BtoA"  # labels (what you draw) -> photo
    assert [c.text() for c in form.pair_view.captions] == ["Input (you draw): side B, label map",
                                                           "Target (the model makes): side A, photo"]
    form.size_box.setValue(SIZE)
    for name, value in (("ngf", 4), ("ndf", 4), ("n_layers_d", 1)):
        form.model_editors[name][0].setValue(value)
    for name, value in (("steps", 2), ("sample_every", 1), ("checkpoint_every", 2)):
        form.train_editors[name][0].setValue(value)
    form.train_editors["device"][0].setCurrentText("cpu")
    spec = form.spec()
    assert spec["model_config"]["palette"] == "facades" and spec["data_config"]["draw_as"] == "label"

    with qtbot.waitSignal(training.controller.state_changed, check_params_cb=lambda s: s == "done", timeout=300000):
        training.start()
    run_dir = training.run_page.run_dir
    assert (run_dir / "latest.safetensors").is_file()
    your_models = [s for s in window.model_panel.sources() if s.path and Path(s.path).parent == run_dir]
    assert len(your_models) == 1 and your_models[0].label.startswith(f"{run_dir.name}  (step 2, ")

    training.run_page.buttons["use"].click()  # "Use in canvas"
    qtbot.waitUntil(lambda: window.session is not None, timeout=120000)
    assert window.canvas.mode == "label" and window.model_panel.draw_mode == "label"
    assert window.canvas.label_palette.names[:3] == Palette.load("facades").names[:3]
    assert window.model_label.text() == f"model: {run_dir.name}" and f"({run_dir.name})" in window.windowTitle()

    runs = RunsList(settings)
    qtbot.addWidget(runs)
    item = runs.tree.topLevelItem(0)
    assert item.text(0) == run_dir.name and item.text(4).endswith(("kB", "MB"))
    monkeypatch.setattr(runs, "confirm_delete", lambda *_: True)
    runs.tree.setCurrentItem(item)
    assert runs.delete_selected() and not run_dir.exists() and runs.tree.topLevelItemCount() == 0


def test_after_a_relaunch_the_last_run_comes_back_in_its_mode(qtbot, settings, tmp_path):
    """The model key remembered in the settings is enough: mode and palette come from the checkpoint; the Model
    panel's entry loads it the same way."""
    from engine.infer.inference import InferenceSession
    from engine.train.training import RunSpec, run_training

    data = write_photo_label_pairs(tmp_path / "data", count=2)
    from engine.core.config import DataConfig, TrainConfig
    from engine.families.pix2pix.family import Pix2PixConfig

    run_dir = tmp_path / "runs" / "facades-tiny"
    spec = RunSpec("pix2pix", Pix2PixConfig(depth=5, ngf=4, ndf=4, n_layers_d=1, palette="facades"),
                   TrainConfig(steps=1, size=(SIZE, SIZE), device="cpu", checkpoint_every=1),
                   DataConfig(path=str(data), direction="BtoA", preprocess="none", draw_as="label"))
    run_training(spec, run_dir)
    settings.setValue("model/last", f"file:{run_dir / 'latest.safetensors'}")
    window = MainWindow(settings=settings, start_engine=False, autoload=True, recovery_dir=tmp_path / "rec")
    qtbot.addWidget(window)
    window.on_engine_ready(import_engine())
    qtbot.waitUntil(lambda: window.session is not None, timeout=120000)
    assert window.canvas.mode == "label" and window.model_label.text() == "model: facades-tiny"
    labels = [s.label for s in window.model_panel.sources()]
    assert any(label.startswith("facades-tiny  (step 1, ") for label in labels)

    # from the panel alike: after an edges model, double-clicking the run's entry brings its label map back
    window.set_session(InferenceSession.untrained("pix2pix", size=(SIZE, SIZE), device="cpu", depth=5, ngf=4, ndf=4))
    window.model_panel.set_draw_mode("edges")
    window._set_canvas_mode("edges", keep=False)
    first = window.session
    tree = window.model_panel.tree
    groups = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    items = [group.child(j) for group in groups for j in range(group.childCount())]
    entry = next(i for i in items if i.text(0).startswith("facades-tiny  (step 1, "))
    assert entry.toolTip(0) == f"{entry.text(0)}\n{run_dir / 'latest.safetensors'}"  # the date, even in a narrow dock
    tree.itemActivated.emit(entry, 0)
    qtbot.waitUntil(lambda: window.session is not first, timeout=120000)
    assert window.canvas.mode == "label" and window.model_label.text() == "model: facades-tiny"
    assert window.canvas.label_palette.names[:3] == Palette.load("facades").names[:3]
