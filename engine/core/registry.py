"""The registry of model families: one list that feeds the CLI and the GUI alike.

A family is registered with a decorator::

    @register_family("pix2pix")
    class Pix2Pix(Family): ...

Looking up an unknown name raises :class:`~engine.core.errors.RegistryError` listing the valid ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from engine.core.errors import RegistryError

T = TypeVar("T")

_FAMILIES: dict[str, type] = {}

BUILTIN_FAMILIES = "engine.families"  # the package holding the built-in families
# Modules of engine.families that hold shared code rather than a family.
_NOT_FAMILIES = {"base"}


def register_family(name: str) -> Callable[[T], T]:
    """Class decorator registering a family under ``name``; duplicates are refused."""

    def decorator(cls: T) -> T:
        if name in _FAMILIES:
            raise RegistryError(f"model family {name!r} is already registered", value=name)
        _FAMILIES[name] = cls  # type: ignore[assignment]
        cls.name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def unregister_family(name: str) -> None:
    """Forget a family registered from outside :mod:`engine.families` (a plug-in under test); unknown names are
    ignored. Importing its package again does not register it again (Python imports a module once)."""
    _FAMILIES.pop(name, None)


def _load_builtins() -> None:
    """Import every module of :mod:`engine.families`; each registers its family on import.

    The package is found by name: the registry is the point the families plug into, below all of them, and
    imports none of them by itself (the layers contract in pyproject.toml holds it to that).
    """
    package = importlib.import_module(BUILTIN_FAMILIES)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def list_families() -> list[str]:
    """Names of all registered families, sorted."""
    _load_builtins()
    return sorted(_FAMILIES)


def get_family(name: str) -> type:
    """The family class registered as ``name``."""
    _load_builtins()
    try:
        return _FAMILIES[name]
    except KeyError:
        choices = ", ".join(sorted(_FAMILIES)) or "none"
        raise RegistryError(f"unknown model family {name!r}; choose one of: {choices}", value=name) from None
