"""One target under atheris, the coverage-guided fuzzer (libFuzzer driving Python): ``make fuzz`` runs it.

The engine's modules are instrumented, so inputs that reach new branches are kept and mutated further. Half of
the mutations are libFuzzer's own byte edits, half the target's (structural JSON edits for headers, recipes for
dataset folders). A crash outside the Ganvas error hierarchy is recorded (input saved) and the run goes on, so
one bug does not hide the next; an input slower than 5 s counts as a hang. Usage::

    python -m tests.fuzz.atheris_target image --inputs 100000 --out fuzz-findings
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["engine"]):
    import engine.core.checkpoint
    import engine.core.config
    import engine.core.imageio
    import engine.core.project
    import engine.core.registry
    import engine.core.run_log
    import engine.data.dataset_check
    import engine.data.datasets
    import engine.data.palette
    import engine.families.stylegan2.latent
    import engine.infer.importing
    import engine.infer.inference
    import engine.train.training  # noqa: F401 - instrumented for coverage

from tests.fuzz.driver import Findings, _scratch, quiet_decoders, run_input  # noqa: E402
from tests.fuzz.targets import TARGETS, fresh_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fuzz-findings")
    parser.add_argument("--max-seconds", type=float, default=0.0)
    args = parser.parse_args()
    quiet_decoders()
    target = TARGETS[args.target]
    root = Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-", dir=_scratch()))
    out = Path(args.out)
    findings = Findings(target.name, out)
    corpus = root / "corpus"
    corpus.mkdir()
    seeds = target.seeds(fresh_folder(root / "seeds"))
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index}").write_bytes(seed)
    max_len = max(4096, 2 * max(len(s) for s in seeds))
    for seed in seeds:  # lazy imports (torch submodules) happen here, not on the fuzzer's clock
        run_input(target, seed, root)

    def test_one_input(data: bytes) -> None:
        findings.record(data, *run_input(target, data, root))
        if findings.inputs % 200 == 0 or findings.inputs == args.inputs:
            findings.write(out / f"{target.name}.json")

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        mutated = target.mutate(data, rng) if rng.random() < 0.5 else atheris.Mutate(data, max_size)
        return mutated[:max_size]

    out.mkdir(parents=True, exist_ok=True)
    limit = [f"-max_total_time={int(args.max_seconds)}"] if args.max_seconds else []
    atheris.Setup([sys.argv[0], str(corpus), f"-runs={args.inputs}", f"-seed={args.seed + 1}", f"-max_len={max_len}",
                   "-timeout=120", "-rss_limit_mb=6144", "-print_final_stats=1", f"-artifact_prefix={out}/",
                   *limit],
                  test_one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
