"""The ``Example:`` blocks in engine and model docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for package in ("engine", "models")
                 for p in (ROOT / package).rglob("*.py") if ">>>" in p.read_text(encoding="utf-8"))


def test_examples_were_found():
    assert {"engine.families.stylegan2.nearest", "engine.core.run_log", "models.lpips"} <= set(MODULES) and len(MODULES) >= 5


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
