"""A run's history: log records, loss windows, the table and the stacked sample grids of ``ganvas history``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.errors import ConfigError, DatasetError
from engine.core.imageio import read_image, write_image
from engine.core.run_log import (
    CURVE_TREND,
    format_windows,
    loss_curves,
    loss_windows,
    parse_windows,
    progress_figure,
    read_log,
    run_batch_size,
    sample_steps,
)


def _fake_run(run: Path, steps: int = 30, batch_size: int = 8, sample_every: int = 10) -> Path:
    """A run folder as training leaves it: config.json, log.jsonl with a torn line and a re-logged step, samples."""
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"family": "stylegan2", "train_config": {"batch_size": batch_size}}))
    lines = [json.dumps({"step": s, "lr_factor": 1.0, "D": float(s), "G": 2.0 * s}) for s in range(1, steps + 1)]
    lines.insert(5, json.dumps({"step": 3, "lr_factor": 1.0, "D": 100.0, "G": 100.0}))  # step 3 again: this wins
    lines.append('{"step": 31, "lr_fac')  # torn by a kill
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    for step in range(sample_every, steps + 1, sample_every):
        write_image(run / "samples" / f"step_{step:08d}.png", np.full((12, 20, 3), step, np.uint8))
    write_image(run / "samples" / "latest.png", np.zeros((12, 20, 3), np.uint8))
    return run


def test_read_log_keeps_one_record_per_step_and_skips_torn_lines(tmp_path: Path) -> None:
    records = read_log(_fake_run(tmp_path / "run"))
    assert [r["step"] for r in records] == list(range(1, 31))
    assert records[2]["D"] == 100.0
    assert read_log(tmp_path / "no-run") == []


def test_loss_windows_average_each_block_or_the_given_windows(tmp_path: Path) -> None:
    records = read_log(_fake_run(tmp_path / "run"))
    blocks = loss_windows(records, every=10)
    assert [(w.first, w.last, w.count) for w in blocks] == [(1, 10, 10), (11, 20, 10), (21, 30, 10)]
    assert blocks[0].means["D"] == pytest.approx((sum(range(1, 11)) - 3 + 100) / 10)
    assert blocks[1].means == {"D": 15.5, "G": 31.0}
    assert len(loss_windows(records)) == 10  # default: tenths of the run
    chosen = loss_windows(records, windows=parse_windows("21-25, 26-100,200-300"))
    assert [(w.first, w.last, w.means["D"]) for w in chosen] == [(21, 25, 23.0), (26, 30, 28.0)]
    with pytest.raises(ConfigError, match="'9-2'"):
        parse_windows("1-5,9-2")
    with pytest.raises(ConfigError, match="at least 1"):
        loss_windows(records, every=0)


def test_the_table_shows_kimg_from_the_batch_size(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "run", batch_size=8)
    assert run_batch_size(run) == 8 and run_batch_size(tmp_path) is None
    table = format_windows(loss_windows(read_log(run), every=10), run_batch_size(run), markdown=True)
    lines = table.splitlines()
    assert lines[0] == "| steps | kimg | D | G |"
    assert lines[3] == "| 11-20 | 0-0 | 15.5 | 31 |"
    plain = format_windows(loss_windows(read_log(run), every=15)).splitlines()
    assert plain[0].split() == ["steps", "D", "G"] and plain[2].split() == ["16-30", "23", "46"]


def test_progress_figure_stacks_labelled_grids(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "run")
    assert sample_steps(run) == [10, 20, 30]
    figure = progress_figure(run, [10, 30], batch_size=8, label_width=50)
    assert figure.shape == (24, 70, 3)
    assert (figure[:12, 50:] == 10).all() and (figure[12:, 50:] == 30).all()
    assert (figure[:, :50] < 128).any()  # the label is drawn
    with pytest.raises(DatasetError, match="step 15"):
        progress_figure(run, [10, 15])


def test_loss_curves_draw_one_chart_per_loss_with_its_trend() -> None:
    records = [{"step": s, "lr_factor": 1.0, "D": 10.0 - s / 100 + (0.5 if s % 2 else -0.5), "G": 1.0}
               for s in range(1, 1001)]
    records[500]["D"] = 1e6  # one spike does not flatten the chart
    image = loss_curves(records, panel=(300, 160), columns=2)
    assert image.shape == (160, 600, 3)
    chart = image[:, :300]
    rows, columns = np.nonzero(np.abs(chart.astype(int) - CURVE_TREND).sum(axis=2) < 60)
    left, right = rows[columns < 90], rows[columns > 270]
    assert left.size and right.size and left.mean() < right.mean() - 60  # falling D: the trend goes down
    assert (np.abs(image[:, 300:].astype(int) - CURVE_TREND).sum(axis=2) < 60).any()  # G is drawn too
    with pytest.raises(DatasetError):
        loss_curves([])


def test_history_command_prints_the_table_and_writes_the_figure(tmp_path: Path, capsys) -> None:
    run = _fake_run(tmp_path / "run")
    assert main(["history", str(run), "--windows", "1-10,11-30", "--markdown", "--figure",
                 str(tmp_path / "history.png"), "--curves", str(tmp_path / "curves.png")]) == 0
    out = capsys.readouterr()
    assert "| 11-30 | 0-0 | 20.5 | 41 |" in out.out
    assert "10, 20, 30" in out.err
    assert read_image(tmp_path / "history.png").shape == (36, 130, 3)
    assert read_image(tmp_path / "curves.png").shape == (220, 880, 3)  # D and G side by side
    assert main(["history", str(run), "--figure", str(tmp_path / "two.png"), "--figure-steps", "20,30"]) == 0
    assert read_image(tmp_path / "two.png").shape[0] == 24
    assert main(["history", str(tmp_path / "missing")]) == DatasetError.exit_code
    assert "no log.jsonl records" in capsys.readouterr().err
    assert main(["history", str(run), "--figure", str(tmp_path / "x.png"), "--figure-steps", "ten"]) == 2
