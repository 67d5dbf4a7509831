""""Start from a model..." in the training window: a tiny run chosen as the source locks the network settings,
and the run started from the window (a real child process) records the source and starts from its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox  # noqa: E402

from desktop.training.runs_list import SETTINGS_KEY  # noqa: E402
from desktop.training.window import TrainingWindow  # noqa: E402
from engine.core.config import DataConfig, TrainConfig  # noqa: E402
from engine.data.dataset_check import DatasetReport  # noqa: E402
from tests.engine.helpers import write_aligned_dataset  # noqa: E402

pytestmark = pytest.mark.gui
SOURCE_CONFIG = {"depth": 5, "ngf": 4, "ndf": 4, "n_layers_d": 1}


def _source_run(run_dir: Path, data: Path) -> None:
    """A 2-step pix2pix run at 32 px, seeded unlike the window's default seed (0), so a fresh network of the new
    run could not match its weights by chance."""
    from engine.core.registry import get_family
    from engine.train.training import RunSpec, run_training

    config = get_family("pix2pix").auto_config((32, 32), SOURCE_CONFIG)
    train = TrainConfig(steps=2, size=(32, 32), device="cpu", seed=1234, sample_every=2, checkpoint_every=2)
    assert run_training(RunSpec("pix2pix", config, train, DataConfig(path=str(data), preprocess="none")),
                        run_dir).kind == "done"


@pytest.mark.timeout(900)  # a real training process: minutes when the machine is loaded
def test_a_run_started_from_a_chosen_run_records_it_and_starts_from_its_weights(qtbot, tmp_path, monkeypatch):
    from engine.core.checkpoint import load_checkpoint, read_metadata

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    source_dir = tmp_path / "runs" / "tiny-source"
    _source_run(source_dir, write_aligned_dataset(tmp_path / "source-data", count=2))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_KEY, str(tmp_path / "runs"))
    settings.setValue("preferences/models_folder", str(tmp_path / "models"))
    window = TrainingWindow(settings, has_cuda=False, gpus=0)
    qtbot.addWidget(window)
    form = window.form

    # a damaged file is refused with the reason, and the form keeps a fresh network
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: warnings.append((title, text)))
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    assert not window.use_init(str(damaged))
    assert warnings and warnings[0][0] == "Cannot start from this model" and "damaged.safetensors" in warnings[0][1]
    assert form.init is None and form.family_combo.isEnabled()

    # choose the run in the dialog: bundled models by their card titles, then the user's runs
    form.init_button.click()
    dialog = window.init_dialog
    assert dialog is not None and dialog.isVisible()
    entries = {item.data(0, Qt.ItemDataRole.UserRole): item for item in dialog.items()}  # by path
    source_path = str((source_dir / "latest.safetensors").resolve())
    assert source_path in entries and entries[source_path].text(0).startswith("tiny-source  (step 2, ")
    assert entries[source_path].text(1) == "pix2pix"
    dialog.tree.setCurrentItem(entries[source_path])
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert form.init is not None and form.init.name == "tiny-source" and form.init.networks == ("G", "D")
    assert form.family_name == "pix2pix" and not form.family_combo.isEnabled() and form.size_box.value() == 32
    assert all(widget.isEnabled() == (name in ("lr_g", "lr_d", "betas"))  # the learning rates are this run's
               for name, (widget, _) in form.model_editors.items())
    assert form.network_note.isVisibleTo(form) and "come from tiny-source" in form.network_note.text()
    assert form.model_editors["ngf"][0].value() == 4 and form.model_editors["depth"][0].value() == 5
    assert all(widget.isEnabled() for name, (widget, _) in form.train_editors.items() if name != "amp")  # amp: CUDA

    # a dataset the model's family cannot train on: the family stays, the form says why, Start is off
    unaligned = DatasetReport(str(tmp_path), "unaligned", counts={"trainA": 3, "trainB": 3}, fits=("cyclegan",))
    window._on_dataset(str(tmp_path), unaligned)
    assert form.family_name == "pix2pix" and "is a pix2pix model" in form.error_label.text()
    assert not window.start_button.isEnabled()

    data = write_aligned_dataset(tmp_path / "own-data", count=2, seed=7)
    with qtbot.waitSignal(window.dataset_page.dataset_checked, timeout=120000):
        window.dataset_page.check(str(data))
    assert form.family_name == "pix2pix" and form.error_label.text() == "" and window.start_button.isEnabled()
    # one step at a tiny learning rate: Adam moves each weight by about lr, so the weights stay the source's
    for name, value in (("steps", 1), ("sample_every", 1), ("checkpoint_every", 1)):
        form.train_editors[name][0].setValue(value)
    for name in ("lr_g", "lr_d"):
        form.model_editors[name][0].setValue(1e-6)
    form.train_editors["device"][0].setCurrentText("cpu")
    form.data_editors["preprocess"][0].setCurrentText("none")
    started = []
    window.controller.event.connect(lambda event: event.get("kind") == "start" and started.append(event))
    with qtbot.waitSignal(window.controller.state_changed, check_params_cb=lambda s: s in ("done", "failed"),
                          timeout=300000):
        window.start()
    assert window.controller.state == "done", window.run_page.error_box.toPlainText()

    run_dir = window.run_page.run_dir
    assert json.loads((run_dir / "spec.json").read_text())["init_from"] == source_path
    meta = read_metadata(run_dir / "latest.safetensors")
    assert meta["init"] == {"source": "tiny-source", "step": 2, "networks": ["G", "D"], "fresh": []}
    assert meta["step"] == 1 and meta["model_config"]["lr_g"] == meta["model_config"]["lr_d"] == pytest.approx(1e-6)
    source, new = load_checkpoint(source_dir), load_checkpoint(run_dir)
    assert meta["model_config"] == {**source.meta["model_config"], "lr_g": 1e-6, "lr_d": 1e-6}
    weights = {k: v for k, v in source.group("net.G").items() if v.is_floating_point() and "running_" not in k}
    assert weights
    for key, value in weights.items():
        moved = float((new.group("net.G")[key] - value).abs().max())
        assert moved < 1e-4, f"G.{key} moved {moved} in one step at lr 1e-6: not the source's weights"
    assert "initialised from tiny-source (step 2: G, D)" in started[0]["message"]
