"""A run's history from its folder: mean losses over step windows, and its sample grids over time.

Training appends one record per step to ``log.jsonl`` and saves ``samples/step_NNNNNNNN.png`` every
``sample_every`` steps; this module reads both back for ``ganvas history`` and the training window.

Example:
    >>> records = [{"step": s, "lr_factor": 1.0, "D": float(s)} for s in range(1, 7)]
    >>> [(w.first, w.last, w.means["D"]) for w in loss_windows(records, every=3)]
    [(1, 3, 2.0), (4, 6, 5.0)]
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import ConfigError, DatasetError
from engine.imageio import read_image

LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.json"
SAMPLE_NAME = re.compile(r"step_(\d+)\.png")
NOT_LOSSES = ("step", "lr_factor")


@dataclass(frozen=True)
class LossWindow:
    """The mean of every logged loss over steps ``first``..``last`` (``count`` records)."""

    first: int
    last: int
    count: int
    means: dict[str, float]


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl``, one per step in step order; an empty list when there is none.

    A line torn by a kill is skipped; where a step was logged twice, the later record wins.
    """
    try:
        lines = (Path(run_dir) / LOG_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for line in lines:
        try:
            record = json.loads(line)
            by_step[int(record["step"])] = record
        except (ValueError, KeyError, TypeError):
            continue
    return [by_step[step] for step in sorted(by_step)]


def read_run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``config.json`` (family, model, train and data configs), or None when missing or unreadable."""
    try:
        config = json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def run_batch_size(run_dir: str | Path) -> int | None:
    """The batch size a run trains with, from its ``config.json`` (None when unknown)."""
    try:
        return int((read_run_config(run_dir) or {})["train_config"]["batch_size"])
    except (KeyError, TypeError, ValueError):
        return None


def parse_windows(text: str) -> list[tuple[int, int]]:
    """``"1-3000,3001-6000"`` as ``[(1, 3000), (3001, 6000)]`` (both ends included).

    Raises:
        ConfigError: not a comma-separated list of ``FIRST-LAST`` with FIRST <= LAST.
    """
    windows = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", part)
        if not match or int(match[1]) > int(match[2]):
            raise ConfigError(f"step window {part.strip()!r} is not FIRST-LAST with FIRST <= LAST")
        windows.append((int(match[1]), int(match[2])))
    return windows


def loss_windows(records: Sequence[dict[str, Any]], every: int | None = None,
                 windows: Sequence[tuple[int, int]] | None = None) -> list[LossWindow]:
    """Mean losses over consecutive blocks of ``every`` steps, or over the given ``(first, last)`` windows.

    Windows with no records are left out. Without either argument, the whole log is split into ten blocks.

    Raises:
        ConfigError: ``every`` below 1.
    """
    if not records:
        return []
    if windows is None:
        last_step = int(records[-1]["step"])
        every = every if every is not None else max(1, -(-last_step // 10))
        if every < 1:
            raise ConfigError(f"--every must be at least 1, not {every}")
        windows = [(first, first + every - 1) for first in range(1, last_step + 1, every)]
    out = []
    for first, last in windows:
        rows = [r for r in records if first <= int(r["step"]) <= last]
        if not rows:
            continue
        names = [name for name in rows[0] if name not in NOT_LOSSES]
        means = {name: float(np.mean([r[name] for r in rows if name in r])) for name in names}
        out.append(LossWindow(int(rows[0]["step"]), int(rows[-1]["step"]), len(rows), means))
    return out


def format_windows(windows: Sequence[LossWindow], batch_size: int | None = None, markdown: bool = False) -> str:
    """A table of :func:`loss_windows`: steps, images seen in kimg (with ``batch_size``), then one column a loss."""
    if not windows:
        return ""
    names = list(windows[0].means)
    header = ["steps"] + (["kimg"] if batch_size else []) + names
    rows = []
    for window in windows:
        row = [f"{window.first}-{window.last}"]
        if batch_size:
            row.append(f"{(window.first - 1) * batch_size / 1000:.0f}-{window.last * batch_size / 1000:.0f}")
        rows.append(row + [f"{window.means[name]:.3g}" if name in window.means else "" for name in names])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
                     for line in [header, *rows])


def sample_steps(run_dir: str | Path) -> list[int]:
    """The steps that have a saved sample grid (``samples/step_N.png``), ascending."""
    folder = Path(run_dir) / "samples"
    if not folder.is_dir():
        return []
    return sorted(int(m[1]) for p in folder.iterdir() if (m := SAMPLE_NAME.fullmatch(p.name)))


def spread(steps: Sequence[int], count: int) -> list[int]:
    """``count`` of ``steps`` spread evenly from the first to the last (all of them when there are fewer).

    Example:
        >>> spread([500, 1000, 1500, 2000, 2500], 3)
        [500, 1500, 2500]
    """
    if count >= len(steps):
        return list(steps)
    if count <= 1:
        return list(steps[-1:])
    return [steps[round(i * (len(steps) - 1) / (count - 1))] for i in range(count)]


def progress_figure(run_dir: str | Path, steps: Sequence[int], batch_size: int | None = None,
                    label_width: int = 110) -> np.ndarray:
    """The sample grids of ``steps`` stacked top to bottom, each labelled with its step (or kimg), as uint8 RGB.

    Raises:
        DatasetError: a step without a sample grid (named), or grids of different widths.
    """
    if not steps:
        raise DatasetError(f"{run_dir}: no sample grids to show (samples/step_N.png)")
    rows = []
    for step in steps:
        path = Path(run_dir) / "samples" / f"step_{step:08d}.png"
        if not path.is_file():
            raise DatasetError(f"{path}: no sample grid at step {step}")
        grid = read_image(path)
        label = np.full((grid.shape[0], label_width, 3), 255, np.uint8)
        text = f"{step * batch_size / 1000:.0f} kimg" if batch_size else f"step {step}"
        cv2.putText(label, text, (6, grid.shape[0] // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([label, grid], 1))
    if len({row.shape[1] for row in rows}) > 1:
        raise DatasetError(f"{run_dir}: the sample grids differ in width, so they cannot be stacked")
    return np.concatenate(rows, 0)
