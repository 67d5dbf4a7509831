"""The Label maps tab (extract, edit, save, convert, unknown colours) and the run page's checkpoint choice,
under pytest-qt (offscreen) on 32 px synthetic maps."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QColorDialog, QFileDialog  # noqa: E402

from desktop.training.label_maps_tab import LabelMapsTab  # noqa: E402
from desktop.training.run_controller import RunController  # noqa: E402
from desktop.training.run_page import RunPage  # noqa: E402
from engine.core.imageio import write_image  # noqa: E402

pytestmark = pytest.mark.gui

RED, BLUE, YELLOW = (220, 30, 30), (20, 40, 200), (240, 220, 20)


def _label_map(seed: int) -> np.ndarray:
    """Three flat colour blocks; blue covers most pixels so it becomes class 0."""
    image = np.empty((32, 32, 3), np.uint8)
    image[:] = BLUE
    image[:12, : 8 + seed] = RED
    image[20:, 16:] = YELLOW
    return image


def _write_maps(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_image(folder / f"map{i}.png", _label_map(i))
    return folder


def _extracted(qtbot, tmp_path: Path) -> LabelMapsTab:
    tab = LabelMapsTab()
    qtbot.addWidget(tab)
    tab.set_source(_write_maps(tmp_path / "maps"))
    with qtbot.waitSignal(tab.finished, timeout=20000):
        tab.extract_button.click()
    return tab


def test_extract_edit_save(qtbot, tmp_path: Path, monkeypatch) -> None:
    tab = _extracted(qtbot, tmp_path)
    assert tab.palette is not None and tab.palette.n_classes == 3
    assert tab.table.rowCount() == 3 and tab.palette.colors[0].tolist() == list(BLUE)
    qtbot.waitUntil(lambda: tab.snapped_view.original is not None, timeout=5000)  # the snapped preview

    tab.rename(1, "wall")
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor(0, 255, 0))
    tab.table.cellWidget(2, 2).click()
    tab.background_group.button(1).click()
    target = tmp_path / "out" / "mine.json"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    tab.save_button.click()
    data = json.loads(target.read_text())
    assert data["classes"][1]["name"] == "wall" and data["classes"][2]["color"] == [0, 255, 0]
    assert data["background"] == 1

    tab.rename(2, "wall")  # duplicate names are shown inline and block saving
    assert "wall" in tab.error_label.text() and not tab.save_button.isEnabled()
    tab.rename(2, "door")
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor(*BLUE))
    tab.table.cellWidget(2, 2).click()  # same colour as class 0
    assert "share the colour" in tab.error_label.text() and tab.palette is None

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    tab.load_palette_file()
    assert tab.palette is not None and tab.palette.names[1] == "wall" and not tab.error_label.text()


def test_convert_writes_ids_and_reports_unknown_colours(qtbot, tmp_path: Path) -> None:
    tab = _extracted(qtbot, tmp_path)
    odd = _label_map(0)
    odd[4:14, 20:30] = (0, 255, 0)  # a 10x10 block of a colour the palette lacks
    write_image(tmp_path / "maps" / "odd.png", odd)
    tab.dst_edit.setText(str(tmp_path / "index"))
    with qtbot.waitSignal(tab.finished, timeout=20000):
        tab.convert_button.click()
    index = cv2.imread(str(tmp_path / "index" / "map1.png"), cv2.IMREAD_UNCHANGED)
    assert index.ndim == 2 and set(np.unique(index).tolist()) == {0, 1, 2}
    expected = np.zeros((32, 32), np.uint8)
    for cls, color in enumerate(tab.palette.colors.tolist()):
        expected[(_label_map(1) == color).all(axis=2)] = cls
    assert (index == expected).all()
    problems = [tab.problems.item(i).text() for i in range(tab.problems.count())]
    assert len(problems) == 1 and problems[0].startswith("odd.png") and "[0, 255, 0]" in problems[0]
    assert "Wrote 4 index maps" in tab.result_label.text()


def test_use_in_canvas_with_a_step_checkpoint(qtbot, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("latest.safetensors", "checkpoints/step_00000010.safetensors",
                 "checkpoints/step_00000020.safetensors"):
        (run / name).write_bytes(b"x")
    loaded = []
    page = RunPage(RunController(), load_model=loaded.append)
    qtbot.addWidget(page)
    page.show_run(run)
    combo = page.checkpoint_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["latest", "step 20", "step 10"]
    page.buttons["use"].click()
    combo.setCurrentIndex(combo.findText("step 10"))
    page.buttons["use"].click()
    assert [s.path for s in loaded] == [str(run / "latest.safetensors"),
                                        str(run / "checkpoints" / "step_00000010.safetensors")]
    assert "step 10" in loaded[1].label
    (run / "checkpoints" / "step_00000030.safetensors").write_bytes(b"x")
    page.on_event({"kind": "checkpoint", "step": 30, "total": 100})
    assert combo.itemText(1) == "step 30" and combo.currentText() == "step 10"

