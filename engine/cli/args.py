"""Command-line flags generated from config dataclasses, so every config field has a flag, with the help text the
field carries (:func:`engine.core.config.field_help`)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from engine.core.config import OPTIMIZER_FIELDS, field_help, parse_size

# Flags of the Adam settings from before every family config had lr_g, lr_d and betas: they still parse, into
# those fields (--lr and --beta1/--beta2 were pix2pix's and CycleGAN's, --learning-rate StyleGAN2's, --adam-betas
# SPADE's and StyleGAN2's). flag dest -> (type, deprecation note).
DEPRECATED_OPTIMIZER_FLAGS: dict[str, tuple[Any, str]] = {
    "lr": (float, "deprecated: sets --lr-g and --lr-d"),
    "learning_rate": (float, "deprecated: sets --lr-g and --lr-d"),
    "beta1": (float, "deprecated: sets the first of --betas"),
    "beta2": (float, "deprecated: sets the second of --betas"),
    "adam_betas": (None, "deprecated: use --betas"),
}


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
        if f.metadata.get("follows_size"):  # the network's copy of --size: the old flag sets --size
            group.add_argument(flag, dest=prefix.replace("-", "_") + "size", default=None,
                               help="deprecated: sets --size")
            continue
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
    if set(OPTIMIZER_FIELDS) <= {f.name for f in dataclasses.fields(cls)}:
        for name, (kind, note) in DEPRECATED_OPTIMIZER_FLAGS.items():
            group.add_argument("--" + prefix + name.replace("_", "-"), dest=prefix.replace("-", "_") + name,
                               type=kind or _parse_tuple, default=None, help=note)


def config_overrides(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (deprecated flags mapped to today's fields)."""
    out = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in fields:
        value = getattr(args, prefix.replace("-", "_") + name, None)
        if value is not None:
            out[name] = value
    if set(OPTIMIZER_FIELDS) <= set(fields):
        old = {name: getattr(args, prefix.replace("-", "_") + name, None) for name in DEPRECATED_OPTIMIZER_FLAGS}
        out.update(optimizer_from_old_flags(old, out, fields["betas"].default))
    return out


def optimizer_from_old_flags(old: dict[str, Any], given: dict[str, Any],
                             default_betas: tuple[float, float]) -> dict[str, Any]:
    """``lr_g``, ``lr_d`` and ``betas`` set by the deprecated flags in ``old`` (dest -> value or None) that
    today's flags in ``given`` leave open; a lone --beta1 or --beta2 keeps the other beta of --betas or the
    family's default.

    Example:
        >>> optimizer_from_old_flags({"lr": 0.001, "beta1": 0.9}, {"lr_d": 0.004}, (0.5, 0.999))
        {'lr_g': 0.001, 'betas': (0.9, 0.999)}
    """
    out: dict[str, Any] = {}
    lr = old.get("lr") if old.get("lr") is not None else old.get("learning_rate")
    if lr is not None:
        out.update({name: lr for name in ("lr_g", "lr_d") if name not in given})
    beta1, beta2 = old.get("beta1"), old.get("beta2")
    betas = given.get("betas", old.get("adam_betas"))
    if beta1 is not None or beta2 is not None:
        first, second = betas if betas is not None else default_betas
        betas = (first if beta1 is None else beta1, second if beta2 is None else beta2)
    if betas is not None:
        out["betas"] = betas
    return out
