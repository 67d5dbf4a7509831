"""Shared fixtures. Real data lives in ../shared/data; CI sets GANVAS_REQUIRE_DATA=1 so it is never skipped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Caches (the dataset check's image sizes) go to a fresh folder, never the user's, also in child processes.
os.environ["GANVAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ganvas-test-cache-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        message = f"real data folder {SHARED} is missing"
        if os.environ.get("GANVAS_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-tensor tests: more threads only add wake-up cost, and on a
    loaded CPU they cost 100x (opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
