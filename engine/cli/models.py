"""``ganvas models`` and ``ganvas bundle``: list the bundled models, make a bundled model from a run.

Wire-up in :mod:`engine.cli.main`: ``add_models_commands(commands, COMMANDS)``. Errors are
:class:`~engine.core.errors.GanvasError` (one line in the CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_models_commands(subparsers: Any, commands_table: dict[str, Callable[[argparse.Namespace], int]] | None = None
                        ) -> None:
    """Add ``models`` and ``bundle`` to ``subparsers``; with ``commands_table``, their functions."""
    subparsers.add_parser("models", help="list the bundled models and their cards",
                          description="List the models shipped in assets/models: their names (usable wherever a "
                                      "checkpoint is asked for, e.g. `ganvas translate --checkpoint facades`), "
                                      "cards, data licences and val metrics.")
    bundle = subparsers.add_parser("bundle", help="make a bundled (fp16, inference + fine-tuning) model from a run",
                                   description="Cut a training checkpoint down to its generator (and "
                                               "discriminator) in float16, with a model card and no path of "
                                               "this machine, ready for assets/models.")
    bundle.add_argument("checkpoint", help="training checkpoint or run folder")
    bundle.add_argument("--card", required=True, metavar="JSON",
                        help="model card JSON: title, task, draw_mode, dataset, licence, recipe, wall_time, metrics")
    bundle.add_argument("--out", required=True, help="file to write, e.g. assets/models/facades.safetensors")
    bundle.add_argument("--no-discriminator", action="store_true", help="leave the discriminators out")
    if commands_table is not None:
        commands_table.update({"models": _cmd_models, "bundle": _cmd_bundle})


def _cmd_models(args: argparse.Namespace) -> int:
    from engine.core.bundled import list_bundled, models_folder

    models = list_bundled()
    if not models:
        print(f"ganvas: no bundled models in {models_folder()}", file=sys.stderr)
        return 0
    for model in models:
        print("\n".join(model.lines()))
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from engine.core.bundled import make_bundle
    from engine.core.errors import ConfigError

    try:
        card = json.loads(Path(args.card).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the model card ({exc})", value=args.card) from exc
    if not isinstance(card, dict):
        raise ConfigError("the model card must be a JSON object", value=args.card)
    path = make_bundle(args.checkpoint, args.out, card, discriminator=not args.no_discriminator)
    print(f"ganvas: wrote {path} ({path.stat().st_size / 2**20:.1f} MB)", file=sys.stderr)
    return 0
