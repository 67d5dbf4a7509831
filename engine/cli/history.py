"""``ganvas history RUN``: a run's mean losses over step windows, its loss curves, and its sample grids over time.

Wire-up in :mod:`engine.cli.main`: ``add_history_command(commands, COMMANDS)``. Errors are
:class:`~engine.core.errors.GanvasError` (one line in the CLI).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_FIGURE_ROWS = 8


def add_history_command(subparsers: Any, commands_table: dict[str, Callable[[argparse.Namespace], int]] | None = None
                        ) -> None:
    """Add ``history`` to ``subparsers``; with ``commands_table``, its function too."""
    history = subparsers.add_parser(
        "history", help="a run's mean losses over step windows, and its samples over time",
        description="Print a table of mean losses over windows of steps from a run's log.jsonl (any family, "
                    "while it trains or after); optionally draw its loss curves and stack its saved sample "
                    "grids into one image.")
    history.add_argument("run", metavar="RUN_DIR", help="run folder (holds log.jsonl and samples/)")
    windows = history.add_mutually_exclusive_group()
    windows.add_argument("--every", type=int, help="window length in steps (default: a tenth of the run)")
    windows.add_argument("--windows", metavar="A-B,...", help="explicit step windows, e.g. 26001-29000,29001-32000")
    history.add_argument("--markdown", action="store_true", help="print a Markdown table")
    history.add_argument("--curves", metavar="OUT.png", help="write one chart per loss (raw and smoothed trend)")
    history.add_argument("--figure", metavar="OUT.png", help="write the sample grids of several steps, stacked")
    history.add_argument("--figure-steps", metavar="S,S,...", help="steps for --figure (default: "
                         f"{DEFAULT_FIGURE_ROWS} spread over the run)")
    if commands_table is not None:
        commands_table["history"] = cmd_history


def cmd_history(args: argparse.Namespace) -> int:
    from engine.core.errors import ConfigError, DatasetError
    from engine.core.imageio import write_image
    from engine.core.run_log import (
        LOG_FILE,
        format_windows,
        loss_curves,
        loss_windows,
        parse_windows,
        progress_figure,
        read_log,
        run_batch_size,
        sample_steps,
        spread,
    )

    run_dir = Path(args.run)
    records = read_log(run_dir)
    if not records:
        raise DatasetError(f"{run_dir}: no {LOG_FILE} records; is it a run folder?")
    batch_size = run_batch_size(run_dir)
    windows = parse_windows(args.windows) if args.windows else None
    print(format_windows(loss_windows(records, args.every, windows), batch_size, args.markdown))
    if args.curves:
        path = write_image(args.curves, loss_curves(records))
        print(f"ganvas: loss curves of steps {records[0]['step']}-{records[-1]['step']} written to {path}",
              file=sys.stderr)
    if args.figure:
        if args.figure_steps:
            try:
                steps = [int(s) for s in args.figure_steps.split(",")]
            except ValueError:
                raise ConfigError(f"--figure-steps {args.figure_steps!r} is not a comma-separated list of steps"
                                  ) from None
        else:
            steps = spread(sample_steps(run_dir), DEFAULT_FIGURE_ROWS)
        path = write_image(args.figure, progress_figure(run_dir, steps, batch_size))
        print(f"ganvas: sample grids of steps {', '.join(map(str, steps))} written to {path}", file=sys.stderr)
    return 0
