"""``ganvas palette extract | convert``: find the class colours of label maps, turn colour maps into index PNGs.

Wire-up in :mod:`engine.cli.main`: ``add_palette_commands(commands, COMMANDS)`` adds ``palette`` with its two
sub-commands to the parser and its function to the dispatch table. Errors are
:class:`~engine.core.errors.GanvasError` (one line in the CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def add_palette_commands(subparsers: Any, commands_table: dict[str, Callable[[argparse.Namespace], int]] | None = None
                         ) -> None:
    """Add ``palette extract`` and ``palette convert`` to ``subparsers``; with ``commands_table``, the function."""
    palette = subparsers.add_parser("palette", help="label-map palettes: extract colours, convert colour maps",
                                    description="Palettes for SPADE label maps (see docs/spade.md).")
    actions = palette.add_subparsers(dest="palette_command", metavar="extract|convert")
    extract = actions.add_parser("extract", help="find the class colours of a folder of colour label maps",
                                 description="Find the class colours of colour-coded label maps and print (or "
                                             "write) a palette JSON; classes are ordered by frequency.")
    extract.add_argument("folder", metavar="DIR", help="folder of colour label maps")
    extract.add_argument("--out", help="write the palette JSON here (default: print it)")
    extract.add_argument("--name", default="extracted", help="palette name (default extracted)")
    extract.add_argument("--n-colors", type=int, help="keep exactly this many colours (the most frequent)")
    extract.add_argument("--max-colors", type=int, default=32,
                         help="refuse folders with more colours than this: not label maps (default 32)")
    extract.add_argument("--half", choices=("left", "right"),
                         help="read one half of aligned A|B images (right for facades)")

    convert = actions.add_parser("convert", help="convert colour label maps to index PNGs",
                                 description="Snap every colour map in SRC to the palette and write one "
                                             "single-channel index PNG per file into DST.")
    convert.add_argument("src", metavar="SRC", help="folder of colour label maps")
    convert.add_argument("dst", metavar="DST", help="output folder for <name>.png index maps")
    convert.add_argument("--palette", required=True, metavar="NAME|FILE",
                         help="bundled palette name (e.g. facades) or a palette JSON file")
    convert.add_argument("--half", choices=("left", "right"), help="read one half of aligned A|B images")
    convert.add_argument("--tolerance", type=float, help="RGB distance beyond which a colour is foreign "
                         "(default 100, see docs/spade.md)")
    convert.add_argument("--lenient", action="store_true",
                         help="snap foreign colours to the nearest class and list those files instead of stopping")
    if commands_table is not None:
        commands_table["palette"] = cmd_palette


def cmd_palette(args: argparse.Namespace) -> int:
    from engine.core.errors import ConfigError

    if args.palette_command == "extract":
        return _extract(args)
    if args.palette_command == "convert":
        return _convert(args)
    raise ConfigError("usage: ganvas palette extract DIR | ganvas palette convert SRC DST --palette NAME|FILE")


def _extract(args: argparse.Namespace) -> int:
    from engine.data.labels import extract_palette

    palette = extract_palette(args.folder, args.n_colors, args.max_colors, aligned_half=args.half, name=args.name)
    if args.out:
        path = palette.save(args.out)
        print(f"ganvas: {palette.n_classes} classes written to {path}", file=sys.stderr)
    else:
        print(json.dumps(palette.to_dict(), indent=2))
    for cls in palette.classes:
        print(f"  {cls.id:3d} {cls.name:12s} {list(cls.color)}", file=sys.stderr)
    return 0


def _convert(args: argparse.Namespace) -> int:
    from engine.data.labels import DEFAULT_TOLERANCE, convert_color_maps
    from engine.data.palette import Palette

    palette = Palette.load(args.palette)
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    report = convert_color_maps(args.src, args.dst, palette, tolerance=tolerance, strict=not args.lenient,
                                aligned_half=args.half)
    total = max(1, sum(report.counts))
    shares = ", ".join(f"{c.name} {100 * n / total:.1f}%" for c, n in zip(palette.classes, report.counts,
                                                                             strict=True) if n)
    print(f"ganvas: wrote {len(report.written)} index map(s) to {args.dst} ({shares})", file=sys.stderr)
    for unknown in report.unknown:
        print(f"ganvas: warning: {unknown.path}: {unknown.message()}", file=sys.stderr)
    return 0
