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
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.core.errors import ConfigError, DatasetError
from engine.core.imageio import read_image

SMOOTHING = 0.95  # weight of the past in the trend line drawn over each raw curve
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
        lines = (Path(run_dir) / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
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

    ``records`` are in step order, as :func:`read_log` returns them.

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
    steps = [int(r["step"]) for r in records]  # ascending, as read_log returns them
    out = []
    for first, last in windows:
        rows = records[bisect_left(steps, first): bisect_right(steps, last)]
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


def samples_dir(run_dir: str | Path) -> Path:
    """The folder of a run's sample grids: ``samples``."""
    return Path(run_dir) / "samples"


def sample_path(run_dir: str | Path, step: int) -> Path:
    """Where training saves the sample grid of ``step``: ``samples/step_NNNNNNNN.png``."""
    return samples_dir(run_dir) / f"step_{step:08d}.png"


def latest_sample_path(run_dir: str | Path) -> Path:
    """The copy of the newest sample grid that training keeps: ``samples/latest.png``."""
    return samples_dir(run_dir) / "latest.png"


def sample_steps(run_dir: str | Path) -> list[int]:
    """The steps that have a saved sample grid (``samples/step_N.png``), ascending."""
    folder = samples_dir(run_dir)
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
        path = sample_path(run_dir, step)
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


# ----------------------------------------------------------------------------------------------------------
# Loss curves


def smoothed(points: Sequence[tuple[int, float]], weight: float = SMOOTHING) -> list[tuple[int, float]]:
    """Exponential moving average of the values, debiased so the start is not pulled toward zero.

    Example:
        >>> smoothed([(0, 1.0), (1, 1.0)])
        [(0, 1.0), (1, 1.0)]
    """
    out, average, norm = [], 0.0, 0.0
    for step, value in points:
        average = weight * average + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append((step, average / norm))
    return out


def bucket_means(points: Sequence[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """At most ``max_points`` points: consecutive runs averaged, each at its last step (all when few enough).

    Example:
        >>> bucket_means([(1, 1.0), (2, 3.0), (3, 5.0), (4, 7.0)], 2)
        [(2, 2.0), (4, 6.0)]
    """
    if len(points) <= max_points:
        return list(points)
    size = math.ceil(len(points) / max_points)
    return [(points[min(i + size, len(points)) - 1][0], float(np.mean([v for _, v in points[i: i + size]])))
            for i in range(0, len(points), size)]


CURVE_RAW = (170, 200, 235)  # RGB: light blue raw values
CURVE_TREND = (25, 80, 170)  # RGB: dark blue trend


def loss_curves(records: Sequence[dict[str, Any]], panel: tuple[int, int] = (440, 220), columns: int = 2
                ) -> np.ndarray:
    """One chart per logged loss (raw values light, smoothed trend dark, step on x), as a uint8 RGB image.

    The y range covers the 1st to 99th percentile of the values; values beyond it are drawn (and smoothed) at
    its edge, so a few spikes neither flatten the chart nor lift the trend after them.

    Raises:
        DatasetError: no records.
    """
    if not records:
        raise DatasetError("no loss records to draw")
    names = [name for name in records[0] if name not in NOT_LOSSES]
    width, height = panel
    rows = -(-len(names) // columns)
    image = np.full((rows * height, columns * width, 3), 255, np.uint8)
    for index, name in enumerate(names):
        points = [(int(r["step"]), float(r[name])) for r in records if name in r and math.isfinite(r[name])]
        top, left = (index // columns) * height, (index % columns) * width
        _draw_chart(image[top: top + height, left: left + width], name, points)
    return image


def _draw_chart(canvas: np.ndarray, name: str, points: list[tuple[int, float]]) -> None:
    height, width = canvas.shape[:2]
    x0, x1, y0, y1 = 64, width - 12, 26, height - 28  # plot area
    font, grey = cv2.FONT_HERSHEY_SIMPLEX, (110, 110, 110)
    cv2.putText(canvas, name, (x0, 17), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (200, 200, 200), 1)
    if not points:
        return
    values = np.array([v for _, v in points])
    low, high = np.percentile(values, 1), np.percentile(values, 99)
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    low, high = low - pad, high + pad
    # Values outside the range are drawn at its edge, and enter the trend there too, so a spike stays local.
    raw = bucket_means([(s, min(max(v, low), high)) for s, v in points], x1 - x0)
    first, last = points[0][0], max(points[-1][0], points[0][0] + 1)

    def pixel(step: int, value: float) -> tuple[int, int]:
        x = x0 + (step - first) / (last - first) * (x1 - x0)
        y = y1 - (min(max(value, low), high) - low) / (high - low) * (y1 - y0)
        return round(x), round(y)

    for series, colour, thickness in ((raw, CURVE_RAW, 1), (smoothed(raw), CURVE_TREND, 2)):
        line = np.array([pixel(s, v) for s, v in series], np.int32)
        cv2.polylines(canvas, [line], False, colour, thickness, cv2.LINE_AA)
    for value in (low + pad, (low + high) / 2, high - pad):
        y = pixel(first, value)[1]
        cv2.putText(canvas, f"{value:.3g}", (4, y + 4), font, 0.38, grey, 1, cv2.LINE_AA)
        cv2.line(canvas, (x0 - 3, y), (x0, y), grey, 1)
    for step in (first, (first + last) // 2, last):
        x = pixel(step, low)[0]
        label = f"{step}"
        size = cv2.getTextSize(label, font, 0.38, 1)[0][0]
        cv2.putText(canvas, label, (min(max(x - size // 2, 0), width - size), y1 + 16), font, 0.38, grey, 1,
                    cv2.LINE_AA)


def checkpoint_header(path: str | Path) -> dict[str, Any] | None:
    """The Ganvas metadata of a safetensors checkpoint read from its JSON header alone (no torch, no tensors),
    or None when the file is missing, not safetensors or not a Ganvas checkpoint. For listings; loading goes
    through :func:`engine.core.checkpoint.load_checkpoint`, which checks everything."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= 100 * 2**20:
                return None
            header = json.loads(handle.read(size))
        meta = json.loads(header.get("__metadata__", {}).get("ganvas", "null"))
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


def disk_usage(folder: str | Path) -> int:
    """Bytes taken by the files under ``folder`` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in Path(folder).rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        if path.is_file() and (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    return total
