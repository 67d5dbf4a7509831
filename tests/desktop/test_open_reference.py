"""The app's Open checkpoint takes reference pix2pix/CycleGAN runs through the engine's importer."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog

from desktop.engine_loader import import_engine
from desktop.main_window import MainWindow

pytestmark = [pytest.mark.gui, pytest.mark.realdata]


@pytest.mark.parametrize("chosen", ["horse2zebra_ngf8/train_opt.txt", "pix2pix_facades_ngf8/latest_net_G.pth"])
def test_open_checkpoint_loads_a_reference_run(qtbot, tmp_path, shared_data, monkeypatch, chosen):
    path = shared_data.parent / "interop" / "reference_runs" / chosen
    settings = QSettings(str(tmp_path / "ganvas.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, start_engine=False, autoload=False)
    qtbot.addWidget(window)
    window.on_engine_ready(import_engine())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), ""))
    window.actions_by_name["open_checkpoint"].trigger()
    qtbot.waitUntil(lambda: window.session is not None, timeout=60000)
    card = window.session.card
    assert card.family == ("cyclegan" if "horse" in chosen else "pix2pix") and card.trained
    assert window.model_label.text() == f"model: {path.parent.name if path.suffix == '.txt' else path.stem}"
    assert window.recent_models()[0] == f"file:{path.parent if path.suffix == '.txt' else path}"
