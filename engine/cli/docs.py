"""Regenerate docs/cli.md from the CLI's own --help texts: `python -m engine.cli.docs > docs/cli.md`."""

from __future__ import annotations

import argparse

from engine.cli.main import build_parser


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public accessor for sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(parser: argparse.ArgumentParser, path: list[str], out: list[str]) -> None:
    children = subparsers(parser)
    if path:
        out += [f"## `ganvas {' '.join(path)}`", "", "```", parser.format_help().rstrip(), "```", ""]
    for name, child in children.items():
        walk(child, [*path, name], out)


def main() -> None:
    parser = build_parser()
    parser.prog = "ganvas"
    out = ["# Command-line reference", "",
           "Generated from the commands' own help by `python -m engine.cli.docs > docs/cli.md`.",
           "`ganvas` with no arguments opens the desktop app.", ""]
    walk(parser, [], out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
