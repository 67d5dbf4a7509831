"""The ``Example:`` blocks in engine docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MODULES = sorted(f"engine.{p.stem}" for p in ENGINE.glob("*.py") if ">>>" in p.read_text(encoding="utf-8"))


def test_examples_were_found():
    assert "engine.nearest" in MODULES and len(MODULES) >= 5


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
