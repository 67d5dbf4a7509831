"""The training window's parts under pytest-qt (offscreen): a real child process on a 32 px, ngf 4 pix2pix."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QFormLayout  # noqa: E402

from desktop.training.config_form import ConfigForm  # noqa: E402
from desktop.training.run_controller import RunController  # noqa: E402
from desktop.training.run_page import LossCurves, RunPage  # noqa: E402
from desktop.training.runs_list import SETTINGS_KEY, RunsList  # noqa: E402
from engine.cli.args import config_overrides  # noqa: E402
from engine.cli.main import build_parser  # noqa: E402
from engine.core.config import DataConfig, TrainConfig, parse_size, size_fields, to_dict  # noqa: E402
from engine.core.registry import get_family, list_families  # noqa: E402
from engine.core.run_log import smoothed  # noqa: E402
from tests.engine.helpers import write_aligned_dataset  # noqa: E402

pytestmark = pytest.mark.gui


def _spec(data: Path) -> dict:
    return {"family": "pix2pix", "model_config": {"ngf": 4, "ndf": 4, "depth": 5, "n_layers_d": 1},
            "train_config": to_dict(TrainConfig(steps=500, size=(32, 32), device="cpu", sample_every=2,
                                                checkpoint_every=500)),
            "data_config": to_dict(DataConfig(path=str(data), preprocess="none"))}


def _wait_step(qtbot, controller: RunController, above: int) -> None:
    qtbot.waitUntil(lambda: controller.last_event.get("kind") in ("step", "sample")
                    and controller.last_event["step"] > above, timeout=45000)


def test_config_form_builds_from_each_family(qtbot) -> None:
    form = ConfigForm(list_families(), has_cuda=False)
    qtbot.addWidget(form)
    form.set_data_path("/data")
    for name in list_families():
        form.set_family(name)
        fields = get_family(name).config_cls.__dataclass_fields__
        assert set(form.model_editors) == set(fields)
        assert any(w.toolTip() for w, _ in form.model_editors.values())
        spec = form.spec()
        assert spec["family"] == name and tuple(spec["train_config"]["size"]) == (128, 128)
        assert spec["model_config"].get("ngf", 32) == 32  # smaller networks without CUDA
        assert form.probe_arguments()[:5] == ["-m", "engine.cli", "bench", "train", name]
        # the probe's flags parse back into the form's network config; the size is stated once, as --size
        probe = build_parser().parse_args(form.probe_arguments()[2:])
        assert probe.size == "128" and not {"--image-size", "--resolution"} & set(form.probe_arguments())
        family = get_family(name)
        config = family.auto_config(parse_size(probe.size), config_overrides(probe, family.config_cls))
        assert to_dict(config) == spec["model_config"]
        assert all(not form.model_editors[field][0].isEnabled() for field in size_fields(family.config_cls))
    form.set_family("pix2pix")
    form.size_box.setValue(64)
    assert form.spec()["model_config"]["depth"] == 6  # size-derived field follows the size until edited
    form.model_editors["depth"][0].setValue(5)
    form.size_box.setValue(256)
    assert form.spec()["model_config"]["depth"] == 5


def test_recipe_choice_fills_the_fields_not_edited(qtbot) -> None:
    form = ConfigForm(list_families(), has_cuda=False)
    qtbot.addWidget(form)
    form.set_data_path("/data")
    form.set_family("pix2pix")
    assert form.recipe_combo.isEnabled() and form.spec()["model_config"]["gan_mode"] == "lsgan"
    form.model_editors["lr_g"][0].setValue(1e-4)  # edited by hand: a recipe leaves it alone
    form.recipe_combo.setCurrentText("reference")
    config = form.spec()["model_config"]
    assert (config["gan_mode"], config["dropout"], config["lr_d"], config["lr_g"]) == ("vanilla", True, 2e-4, 1e-4)
    assert form.model_editors["gan_mode"][0].currentText() == "vanilla"
    assert form.spec()["train_config"]["amp"] is False and not form.train_editors["amp"][0].isEnabled()  # no CUDA
    form.set_family("cyclegan")  # no named recipes: the choice is off
    assert not form.recipe_combo.isEnabled() and form.recipe_combo.currentText() == "default"


def test_config_rows_have_plain_names_and_readable_tooltips(qtbot) -> None:
    """ngf, ndf, "n layers d", "gp weight" and amp read as plain names; the field's own name and its doc are in the
    tooltip, as rich text (code for ``choices``, no raw backticks, arrows kept)."""
    form = ConfigForm(list_families(), has_cuda=False)
    qtbot.addWidget(form)
    form.set_family("pix2pix")
    editors = {**form.model_editors, **form.train_editors}

    def row_label(name: str):
        widget = editors[name][0]
        return widget.parentWidget().layout().labelForField(widget)

    for plain, name in (("Generator width", "ngf"), ("Discriminator width", "ndf"),
                        ("Discriminator layers", "n_layers_d"), ("Gradient penalty weight", "gp_weight"),
                        ("Mixed precision (CUDA)", "amp"), ("bf16 on this CPU (AMX)", "cpu_bf16")):
        label = row_label(name)
        assert label.text() == plain
        assert label.toolTip().startswith(f"<b>{name}</b>: <span>") and len(label.toolTip()) > 30
    assert "<code>wgan</code>" in row_label("gp_weight").toolTip()
    for name in list_families():
        form.set_family(name)
        for widget, _ in (*form.model_editors.values(), *form.train_editors.values()):
            assert "``" not in widget.toolTip()
    form.set_family("cyclegan")
    assert "A-&gt;B-&gt;A" in form.model_editors["lambda_a"][0].toolTip()  # rich text: shown as A->B->A


def test_start_pause_resume_use_and_kill(qtbot, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = write_aligned_dataset(tmp_path / "data", count=2)
    loaded = []
    controller = RunController()
    page = RunPage(controller, load_model=loaded.append)
    qtbot.addWidget(page)
    run_dir = tmp_path / "runs" / "r1"
    page.show_run(run_dir)
    controller.start(_spec(data), run_dir)
    _wait_step(qtbot, controller, 1)
    assert page.progress.maximum() == 500 and page.curves.data
    assert "kimg seen" in page.stats.text() and "it/s" in page.stats.text()
    with qtbot.waitSignal(controller.state_changed, check_params_cb=lambda s: s == "paused", timeout=30000):
        page.buttons["pause"].click()
    paused_at = controller.last_event["step"]
    assert controller.last_event["kind"] == "stopped" and paused_at >= 2
    assert page.buttons["resume"].isEnabled() and page.samples.image.original is not None
    page.buttons["use"].click()
    assert loaded and loaded[0].path == str(run_dir / "latest.safetensors")

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_KEY, str(tmp_path / "runs"))
    runs = RunsList(settings)
    qtbot.addWidget(runs)
    assert runs.tree.topLevelItemCount() == 1 and runs.tree.topLevelItem(0).text(3) == "unfinished"

    resumed_steps = []
    controller.event.connect(lambda e: e.get("kind") == "step" and resumed_steps.append(e["step"]))
    page.buttons["resume"].click()
    _wait_step(qtbot, controller, paused_at)
    assert resumed_steps[0] == paused_at + 1  # continues the step count, does not restart
    failures = []
    controller.failed.connect(failures.append)
    os.kill(controller.process.processId(), signal.SIGKILL)
    qtbot.waitUntil(lambda: bool(failures), timeout=10000)
    assert "killed" in failures[0] and "smaller batch size" in failures[0]
    assert page.error_box.isVisible() or not page.isVisible()
    assert "killed" in page.error_box.toPlainText()
    assert controller.state == "failed" and page.buttons["resume"].isEnabled()
    page.buttons["use"].click()  # the GUI still answers
    assert len(loaded) == 2


def test_loss_charts_draw_a_smoothed_trend_over_the_raw_values(qtbot) -> None:
    curves = LossCurves()
    qtbot.addWidget(curves)
    noisy = [(step, 1.0 + (0.5 if step % 2 else -0.5)) for step in range(400)]
    for step, value in noisy:
        curves.add(step, {"D": value})
    curves.refresh()
    _, raw, trend = curves.charts["D"]
    assert raw.count() == trend.count() == 400
    trend_values = [trend.at(i).y() for i in range(100, 400)]
    assert max(trend_values) - min(trend_values) < 0.1  # the alternation is averaged away
    assert abs(sum(trend_values) / len(trend_values) - 1.0) < 0.05
    assert smoothed([(0, 3.0)]) == [(0, 3.0)]  # debiased: the first value is not pulled toward zero


def test_sample_history_follows_the_newest_grid_until_moved_back(qtbot, tmp_path: Path) -> None:
    import numpy as np

    from desktop.training.run_page import SampleHistory
    from engine.core.imageio import write_image

    def grid(step: int) -> Path:
        return write_image(tmp_path / "samples" / f"step_{step:08d}.png", np.full((8, 12, 3), step, np.uint8))

    for step in (10, 20, 30):
        grid(step)
    history = SampleHistory()
    qtbot.addWidget(history)
    history.show_run(tmp_path)

    def shown() -> int:
        return history.image.original.toImage().pixelColor(0, 0).red()

    assert shown() == 30 and history.caption.text() == "step 30 (newest), 3 of 3"
    history.slider.setValue(0)
    assert shown() == 10 and history.caption.text() == "step 10, 1 of 3"
    history.add_sample(grid(40))  # moved back: stays on step 10
    assert shown() == 10 and history.slider.maximum() == 3
    history.slider.setValue(3)
    history.add_sample(grid(50))  # at the newest: follows
    assert shown() == 50 and history.caption.text() == "step 50 (newest), 5 of 5"


def test_suggested_steps_follow_dataset_size():
    from desktop.training.config_form import suggested_steps

    assert suggested_steps(400, 1) == 8000  # 20 epochs of facades
    assert suggested_steps(10, 1) == 500
    assert suggested_steps(10**6, 1) == 200_000
    assert suggested_steps(1334, 4) == 6700


def test_resume_with_changes_retunes_a_stylegan2_run(qtbot, tmp_path: Path, monkeypatch) -> None:
    from engine.core.checkpoint import read_metadata
    from engine.train.training import RunSpec, run_training

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    family = get_family("stylegan2")
    data = family.write_synthetic_dataset(tmp_path / "data", (32, 32), count=2)
    config = family.auto_config((32, 32), {"z_dim": 16, "w_dim": 16, "channel_base": 256, "channel_max": 16,
                                           "mapping_layers": 1, "r1_interval": 2, "pl_interval": 2,
                                           "pl_weight": 2.0})
    train = TrainConfig(steps=1, batch_size=2, size=(32, 32), device="cpu", sample_every=100, checkpoint_every=100)
    run_dir = tmp_path / "run"
    run_training(RunSpec("stylegan2", config, train, DataConfig(path=str(data))), run_dir)
    controller = RunController()
    page = RunPage(controller)
    qtbot.addWidget(page)
    page.show_run(run_dir)
    assert page.buttons["retune"].isEnabled()
    page.buttons["retune"].click()
    dialog = page.retune_dialog
    ok = dialog.buttons.buttons()[0]
    assert set(dialog.editors) == set(family.retunable) and dialog.step == 1
    gamma_label = dialog.findChild(QFormLayout).labelForField(dialog.editors["r1_gamma"][0])
    assert gamma_label.text() == "R1 penalty (gamma)" and gamma_label.toolTip().startswith("<b>r1_gamma</b>")
    gamma, pl_weight = dialog.editors["r1_gamma"][0], dialog.editors["pl_weight"][0]
    assert gamma.value() == config.r1_gamma and ok.isEnabled() and dialog.changes() == {}
    pl_weight.setValue(0.0)  # switching a regulariser off is refused before any process starts
    assert "cannot turn its regulariser on or off" in dialog.error_label.text() and not ok.isEnabled()
    pl_weight.setValue(config.pl_weight)
    gamma.setValue(0.25)
    dialog.steps_box.setValue(2)
    assert ok.isEnabled() and dialog.changes() == {"r1_gamma": 0.25} and dialog.steps() == 2
    with qtbot.waitSignal(controller.state_changed, check_params_cb=lambda s: s in ("done", "failed"), timeout=60000):
        ok.click()
    assert controller.state == "done", page.error_box.toPlainText()
    meta = read_metadata(run_dir / "latest.safetensors")
    assert meta["step"] == 2 and meta["model_config"]["r1_gamma"] == 0.25
    assert meta["retunes"] == [{"step": 1, "r1_gamma": [config.r1_gamma, 0.25]}]
    page.buttons["retune"].click()
    assert "step 1: r1_gamma" in page.retune_dialog.history.text()


def test_gpus_box_appears_with_several_gpus_and_starts_that_many_processes(qtbot, tmp_path: Path,
                                                                            monkeypatch) -> None:
    from desktop.training.window import TrainingWindow

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_KEY, str(tmp_path / "runs"))
    single = TrainingWindow(settings, has_cuda=True, gpus=1)
    qtbot.addWidget(single)
    assert single.form.gpus_box is None and single.form.nproc() == 1
    window = TrainingWindow(settings, has_cuda=True, gpus=4)  # as torch would report on a 4-GPU machine
    qtbot.addWidget(window)
    assert window.form.gpus_box is not None and window.form.gpus_box.maximum() == 4
    window.form.gpus_box.setValue(2)
    window.form.set_data_path(str(write_aligned_dataset(tmp_path / "data", count=2)))
    started = []
    monkeypatch.setattr(window.controller, "start", lambda spec, run_dir, nproc: started.append(nproc))
    window.start()
    assert started == [2]
    device = window.form.train_editors["device"][0]
    device.setCurrentText("cpu")
    assert window.form.nproc() == 1  # the box counts GPUs: a CPU run is one process



def test_a_model_is_refused_label_maps_in_another_palette(qtbot, tmp_path) -> None:
    """Starting from a model that draws in one palette, label maps of another are refused with both names."""
    from types import SimpleNamespace

    from engine.data.dataset_check import DatasetReport

    greys = {"name": "greys", "classes": [{"id": i, "name": f"c{i}", "color": [i * 20] * 3} for i in range(12)]}
    (tmp_path / "greys.json").write_text(json.dumps(greys))
    form = ConfigForm(list_families(), has_cuda=False)
    qtbot.addWidget(form)
    report = DatasetReport(str(tmp_path), "aligned", fits=("pix2pix", "spade"), sides={"A": "label", "B": "photo"},
                           palette="facades")
    form.set_dataset_report(report)
    source = SimpleNamespace(title="My greys model", family="pix2pix", step=10, networks=("generator",),
                             path=tmp_path / "m.safetensors", size=(64, 64),
                             model_config={"palette": str(tmp_path / "greys.json")})
    form.set_init(source)
    assert form.dataset_refuses_init() == (
        "My greys model cannot train on this dataset: its label maps are drawn in the facades palette, but the "
        "model draws in greys: the same colours would mean other classes (label maps in greys, or a model of "
        "facades).")
    form.set_init(SimpleNamespace(**{**vars(source), "model_config": {"palette": "facades"}}))
    assert form.dataset_refuses_init() == ""


def test_a_label_model_started_on_edges_data_draws_edges(qtbot, tmp_path) -> None:
    """Starting from a facades label model on an edges -> photo dataset, the run's model no longer draws in the
    facades palette (the app would offer label colours for an edges model); on label maps it keeps it."""
    from dataclasses import replace
    from types import SimpleNamespace

    from engine.data.dataset_check import DatasetReport
    from tests.engine.test_pix2pix_engine import TINY

    form = ConfigForm(list_families(), has_cuda=False)
    qtbot.addWidget(form)
    form.set_data_path(str(tmp_path))
    form.set_init(SimpleNamespace(title="Facades", family="pix2pix", step=10, networks=("G", "D"),
                                  path=tmp_path / "m.safetensors", size=(32, 32),
                                  model_config=to_dict(replace(TINY, palette="facades"))))
    for sides, palette in (({"A": "edges", "B": "photo"}, ""), ({"A": "photo", "B": "label"}, "facades")):
        form.set_dataset_report(DatasetReport(str(tmp_path), "aligned", fits=("pix2pix",), sides=sides,
                                              palette="facades" if palette else ""))
        assert form.spec()["model_config"]["palette"] == palette


def test_starting_from_a_model_in_the_users_palette_reads_its_label_maps(qtbot, tmp_path, monkeypatch) -> None:
    """Label maps in the user's own palette read as photos until a model drawing in that palette is chosen; the
    window then checks the dataset again in it, so the maps are the input side; clearing the model undoes it."""
    from types import SimpleNamespace

    import numpy as np

    from desktop.training.window import TrainingWindow
    from engine.core.imageio import write_image

    colors = np.array([[250, 20, 120], [20, 230, 200], [120, 60, 10], [90, 90, 250]], np.uint8)
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"name": "mine", "classes": [
        {"id": i, "name": f"c{i}", "color": color.tolist()} for i, color in enumerate(colors)]}))
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        labels = np.kron(colors[rng.integers(0, 4, (4, 4))], np.ones((8, 8, 1))).astype(np.uint8)
        photo = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_image(data / f"{index}.png", np.concatenate([labels, photo], axis=1))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_KEY, str(tmp_path / "runs"))
    window = TrainingWindow(settings, has_cuda=False, gpus=0)
    qtbot.addWidget(window)
    page = window.dataset_page
    with qtbot.waitSignal(page.dataset_checked, timeout=30000):
        page.check(str(data))
    assert page.report.sides == {"A": "photo", "B": "photo"}
    source = SimpleNamespace(title="My model", family="pix2pix", step=10, networks=("G",), size=(32, 32),
                             path=tmp_path / "m.safetensors", model_config={"palette": str(own)})
    monkeypatch.setattr("desktop.training.window.api.inspect_init_source", lambda _source: source)
    with qtbot.waitSignal(page.dataset_checked, timeout=30000):
        assert window.use_init("m.safetensors")
    assert page.report.sides == {"A": "label", "B": "photo"} and page.report.palette == str(own)
    assert window.form.draw_as() == "label" and window.form.dataset_refuses_init() == ""
    with qtbot.waitSignal(page.dataset_checked, timeout=30000):
        window.clear_init()
    assert page.report.sides == {"A": "photo", "B": "photo"} and window.form.init is None


def test_cpu_bf16_is_offered_only_where_the_cpu_has_bf16_units(qtbot, monkeypatch) -> None:
    import desktop.training.config_form as config_form

    for units in (True, False):
        monkeypatch.setattr(config_form, "cpu_has_bf16", lambda units=units: units)
        form = ConfigForm(list_families(), has_cuda=False)
        qtbot.addWidget(form)
        form.set_family("cyclegan")
        box = form.train_editors["cpu_bf16"][0]
        assert box.isEnabled() == units and form.spec()["train_config"]["cpu_bf16"] is False  # off by default
        if units:
            box.setChecked(True)
            assert form.spec()["train_config"]["cpu_bf16"] is True
