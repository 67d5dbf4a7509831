"""Shared fixtures. Real data lives in ../shared/data; CI sets GANVAS_REQUIRE_DATA=1 so it is never skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        message = f"real data folder {SHARED} is missing"
        if os.environ.get("GANVAS_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED
