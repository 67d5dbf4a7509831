"""Short, seeded fuzz runs of every target (hypothesis drives the mutations): a few seconds each, the same
inputs on every run. ``make fuzz`` is the long, coverage-guided run; see docs/reliability.md."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.driver import quiet_decoders
from tests.fuzz.targets import TARGETS, fresh_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Inputs per target in the test suite: about 2-4 s each on a loaded 2-core machine (network builds make the
# checkpoint and .pth targets ~20x slower per input than the parsers).
EXAMPLES = {"image": 300, "palette": 200, "checkpoint": 40, "checkpoint_header": 120, "pth": 40, "latent": 300,
            "project": 300, "project_json": 200, "dataset": 40, "run_log": 200}
_SEEDS: dict[str, list[bytes]] = {}


def seeds_of(name: str) -> list[bytes]:
    if name not in _SEEDS:
        _SEEDS[name] = TARGETS[name].seeds(fresh_folder(Path(tempfile.mkdtemp(prefix="fuzz-seeds-"))))
    return _SEEDS[name]


def test_every_target_has_a_budget_and_seeds():
    assert set(EXAMPLES) == set(TARGETS)
    assert all(seeds_of(name) for name in ("palette", "dataset", "run_log"))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_short_run(name, tmp_path_factory):
    """Each input either loads or raises an error of engine/core/errors.py; anything else fails with the input."""
    quiet_decoders()
    target, seeds = TARGETS[name], seeds_of(name)
    root = tmp_path_factory.mktemp(f"fuzz-{name}")

    @settings(max_examples=EXAMPLES[name], derandomize=True, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(seed_index=st.integers(0, len(seeds) - 1), mutation_seed=st.integers(0, 2**32 - 1),
           rounds=st.integers(0, 3), raw=st.none() | st.binary(max_size=64))
    def one_input(seed_index: int, mutation_seed: int, rounds: int, raw: bytes | None) -> None:
        data, rng = seeds[seed_index], random.Random(mutation_seed)
        for _ in range(rounds):
            data = target.mutate(data, rng)
        if raw is not None and rng.random() < 0.2:
            data = raw  # short arbitrary bytes too, not only mutated seeds
        try:
            target.run(data, fresh_folder(root))
        except Exception as exc:
            from engine.core.errors import GanvasError

            if not isinstance(exc, GanvasError):
                raise

    one_input()
