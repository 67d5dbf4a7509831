"""``ganvas export``: a checkpoint's inference graphs as ONNX files (see docs/backends.md).

Wire-up in :mod:`engine.cli.main`: ``add_export_command(commands, COMMANDS)`` adds the command and its function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def add_export_command(subparsers: Any, commands_table: dict[str, Callable[[argparse.Namespace], int]] | None = None
                       ) -> None:
    """Add ``export`` to ``subparsers``; with ``commands_table``, its function too."""
    from engine.infer.export import EXPORT_FORMATS, OPSET

    export = subparsers.add_parser(
        "export", help="write a checkpoint's generator as ONNX",
        description=f"Export a checkpoint's inference graphs to ONNX (opset {OPSET}). One graph goes to FILE; models "
                    "with several write FILE-STEM.GRAPH.onnx: cyclegan AtoB and BtoA, spade generator (label map "
                    "and style code) and encoder (style image, with use_encoder), stylegan2 mapping (z, psi, "
                    "cutoff) and synthesis. Batch, height and width are dynamic where the network allows; the "
                    "export settings and the model card are in the file's metadata_props.")
    export.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    export.add_argument("--out", required=True, metavar="FILE", help="ONNX file to write")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="file format (default onnx)")
    export.add_argument("--graph", action="append", default=[], metavar="NAME",
                        help="export only this graph (repeatable), e.g. --graph mapping")
    export.add_argument("--direction", choices=("AtoB", "BtoA"), help="(CycleGAN) export one direction only")
    if commands_table is not None:
        commands_table["export"] = _cmd_export


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.infer.export import export_session
    from engine.infer.inference import InferenceSession

    session = InferenceSession.from_checkpoint(args.checkpoint, device="cpu")
    graphs = tuple(args.graph) + ((args.direction,) if args.direction else ())
    for path in export_session(session, args.out, args.format, graphs):
        print(f"ganvas: wrote {path}", file=sys.stderr)
    return 0
