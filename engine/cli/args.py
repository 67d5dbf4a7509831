"""Command-line flags generated from config dataclasses, so every config field has a flag, with the help text the
field carries (:func:`engine.core.config.field_help`)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from engine.core.config import field_help, parse_size


def _parse_tuple(text: str) -> tuple:
    if "x" in text.lower() and "," not in text:
        return parse_size(text)
    return tuple(int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in text.split(","))


def _unwrap_optional(tp: Any) -> Any:
    """``X`` for ``X | None``, so an optional number still parses as a number; other types unchanged."""
    args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def add_config_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                     skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` for each field of ``cls`` (default ``None`` = keep the config's default)."""
    docs = field_help(cls)
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} options")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(f.name, '')} (default: {default})".strip()
        tp = _unwrap_optional(hints[f.name])
        dest = prefix.replace("-", "_") + f.name
        if tp is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif tp in (int, float, str):
            group.add_argument(flag, dest=dest, type=tp, default=None, help=help_text)
        elif tp == tuple[int, int]:  # a size: N or HxW
            group.add_argument(flag, dest=dest, type=parse_size, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=_parse_tuple, default=None, help=help_text)


def config_overrides(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line."""
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix.replace("-", "_") + f.name, None)
        if value is not None:
            out[f.name] = value
    return out
