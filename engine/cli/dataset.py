"""``ganvas dataset check`` and ``ganvas dataset build``: the training window's dataset tools as commands, over
the same engine functions (:func:`~engine.data.dataset_check.check_dataset`, :func:`~engine.data.dataset_builder.build_pairs`
and :func:`~engine.data.labels.convert_color_maps`), with progress bars."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KIND_NAMES = {"label": "label map", "edges": "edges", "sketch": "sketch", "photo": "photo"}


def add_dataset_commands(subparsers: Any, commands_table: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    from engine.data.dataset_builder import CANNY_DEFAULTS, XDOG_DEFAULTS

    dataset = subparsers.add_parser("dataset", help="check a dataset folder, or build one from photos or label maps",
                                    description="The training window's dataset tools (see docs/datasets.md).")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="check|build")
    check = actions.add_parser("check", help="layout, counts, which side is the drawing, and every problem",
                               description="Check a dataset folder before training: its layout, file counts, which "
                                           "side of a pair is the drawing (label map, edges, sketch) and which the "
                                           "photo, and every unreadable, unpaired or odd-sized file.")
    check.add_argument("folder", metavar="DIR", help="dataset folder")
    check.add_argument("--decode-limit", type=int, default=2000, help="decode at most this many files (default 2000)")
    check.add_argument("--palette", default="", metavar="NAME|FILE",
                       help="also recognise label maps drawn in this palette (your own JSON, or a bundled name)")
    check.add_argument("--no-progress", action="store_true", help="print no progress bar")

    build = actions.add_parser("build", help="write edges/sketch -> photo pairs, or index maps from colour maps",
                               description="Build a training set: edges or sketch -> photo pairs (aligned A|B, "
                                           "A = drawing) from a folder of photos, or single-channel index maps from "
                                           "colour label maps.")
    kinds = build.add_subparsers(dest="build_kind", metavar="edges|sketch|labels")
    for kind, defaults in (("edges", CANNY_DEFAULTS), ("sketch", XDOG_DEFAULTS)):
        what = "Canny edges" if kind == "edges" else "XDoG pencil sketches"
        parser = kinds.add_parser(kind, help=f"{what} -> photo pairs from a folder of photos",
                                  description=f"Write {what} -> photo pairs (A|B side by side) under DST/train and "
                                              "every tenth under DST/val.")
        parser.add_argument("src", metavar="SRC", help="folder of photos (read recursively)")
        parser.add_argument("dst", metavar="DST", help="output folder")
        parser.add_argument("--size", type=int, default=256, help="square size of each side (default 256)")
        for name, value in defaults.items():
            parser.add_argument(f"--{name}", type=float, default=value, help=f"(default {value})")
        parser.add_argument("--no-progress", action="store_true", help="print no progress bar")
    labels = kinds.add_parser("labels", help="index PNGs from colour label maps",
                              description="Snap every colour label map in SRC to the palette and write one "
                                          "single-channel index PNG per file into DST.")
    labels.add_argument("src", metavar="SRC", help="folder of colour label maps")
    labels.add_argument("dst", metavar="DST", help="output folder")
    labels.add_argument("--palette", required=True, metavar="NAME|FILE", help="bundled palette name or palette JSON")
    labels.add_argument("--half", choices=("left", "right"), help="read one half of aligned A|B images")
    labels.add_argument("--lenient", action="store_true",
                        help="snap foreign colours to the nearest class and list those files instead of stopping")
    labels.add_argument("--no-progress", action="store_true", help="print no progress bar")
    commands_table["dataset"] = cmd_dataset


@contextmanager
def _progress_bar(unit: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar fed by ``progress(done, total)`` callbacks."""
    from tqdm import tqdm

    bar = tqdm(unit=unit, dynamic_ncols=True, disable=quiet)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def cmd_dataset(args: argparse.Namespace) -> int:
    from engine.core.errors import ConfigError

    if args.dataset_command == "check":
        return _check(args)
    if args.dataset_command == "build" and getattr(args, "build_kind", None):
        return _build(args)
    raise ConfigError("usage: ganvas dataset check DIR | ganvas dataset build edges|sketch|labels SRC DST")


def _check(args: argparse.Namespace) -> int:
    from engine.core.errors import DatasetError
    from engine.data.dataset_check import check_dataset

    with _progress_bar("file", args.no_progress) as progress:
        report = check_dataset(args.folder, args.decode_limit, progress, palette=args.palette)
    if report.layout == "none":
        raise DatasetError(report.problems[0][1] if report.problems else "not a dataset", path=args.folder)
    counts = ", ".join(f"{name} {count}" for name, count in report.counts.items())
    print(f"layout:   {report.layout} ({counts})")
    print(f"trains:   {', '.join(report.fits) or 'no registered family'}")
    if report.sides:
        sides = ", ".join(f"{side} = {KIND_NAMES.get(kind, kind)}" for side, kind in report.sides.items())
        palette = f" ({report.palette} palette)" if report.palette else ""
        print(f"sides:    {sides}{palette}")
    if report.direction:
        print(f"train:    --direction {report.direction} (you draw the {KIND_NAMES[report.input_kind()]})")
    for note in report.notes:
        print(f"note:     {note}")
    for path, message in report.problems:
        print(f"problem:  {path}: {message}")
    print(f"ganvas: {len(report.problems)} problem(s)" if report.problems else "ganvas: no problems found",
          file=sys.stderr)
    return 0


def _build(args: argparse.Namespace) -> int:
    if args.build_kind == "labels":
        from engine.data.labels import convert_color_maps
        from engine.data.palette import Palette

        with _progress_bar("map", args.no_progress) as progress:
            report = convert_color_maps(args.src, args.dst, Palette.load(args.palette), strict=not args.lenient,
                                        aligned_half=args.half, progress=progress)
        print(f"ganvas: wrote {len(report.written)} index map(s) to {args.dst}", file=sys.stderr)
        for unknown in report.unknown:
            print(f"ganvas: warning: {unknown.path}: {unknown.message()}", file=sys.stderr)
        return 0
    from engine.data.dataset_builder import CANNY_DEFAULTS, XDOG_DEFAULTS, build_pairs

    names = CANNY_DEFAULTS if args.build_kind == "edges" else XDOG_DEFAULTS
    params = {name: getattr(args, name) for name in names}
    with _progress_bar("photo", args.no_progress) as progress:
        report = build_pairs(args.src, args.dst, args.build_kind, args.size, progress=progress, **params)
    skipped = f", {report.skipped} unreadable photo(s) skipped" if report.skipped else ""
    print(f"ganvas: wrote {report.train} training and {report.val} validation pairs to {Path(args.dst)}{skipped}",
          file=sys.stderr)
    for path, message in report.problems:
        print(f"ganvas: warning: {path}: {message}", file=sys.stderr)
    return 0
