"""Judge side-by-side CycleGAN horse2zebra runs at marks of shared wall clock: zebra rates and cycle error.

For each run folder and each mark (minutes after ``--start``, the moment both runs were started together), the
checkpoint written nearest the mark is

* run horse -> zebra on the held-back horses (``DATA/testA``) and zebra -> horse on the held-back zebras
  (``DATA/testB``), both scored with ``../shared/quality/h2z_classifier.py`` (the fraction read as zebra);
* evaluated with ``ganvas eval --split test`` (the cycle L1 of both directions).

One tab-separated line per run and mark is appended to ``--out`` (run, mark, minutes, step, zebra rate of the
translated horses, zebra rate of the translated zebras, cycle L1 A, cycle L1 B), and printed::

    python scripts/hold_back.py ../shared/data/horse2zebra data/h2z
    python scripts/cyclegan_marks.py --data data/h2z --start 1796398763 --runs runs/ref runs/cand \\
        --marks 30 60 90 --out out/marks.tsv

Every command runs with ``OMP_NUM_THREADS=--threads``. The classifier only judges: no loss ever sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CLASSIFIER = Path(__file__).resolve().parents[2] / "shared" / "quality" / "h2z_classifier.py"


def nearest_checkpoint(run: Path, start: float, minutes: float) -> tuple[Path, float, int]:
    """The checkpoint of ``run`` written nearest ``start + minutes``; with its own minutes and step."""
    checkpoints = sorted((run / "checkpoints").glob("step_*.safetensors"))
    if not checkpoints:
        raise SystemExit(f"{run}: no checkpoints/step_*.safetensors")
    best = min(checkpoints, key=lambda path: abs(path.stat().st_mtime - start - 60 * minutes))
    return best, (best.stat().st_mtime - start) / 60, int(best.stem.split("_")[1])


def zebra_rate(folder: Path, env: dict[str, str]) -> float:
    """The classifier's fraction of images in ``folder`` read as zebra."""
    out = subprocess.run([sys.executable, str(CLASSIFIER), "score", str(folder)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["frac_zebra"])


def judge(checkpoint: Path, data: Path, work: Path, env: dict[str, str]) -> tuple[float, float, float, float]:
    """(horse -> zebra rate, zebra -> horse rate, cycle L1 A, cycle L1 B) of one checkpoint."""
    ganvas = [sys.executable, "-m", "engine.cli"]
    for direction, source, name in (("AtoB", "testA", "h2z"), ("BtoA", "testB", "z2h")):
        subprocess.run([*ganvas, "translate", "--checkpoint", str(checkpoint), "--direction", direction,
                        str(data / source), "--out", str(work / name)], env=env, check=True, capture_output=True)
    report = subprocess.run([*ganvas, "eval", "--checkpoint", str(checkpoint), "--data", str(data), "--split",
                             "test", "--json"], env=env, check=True, capture_output=True, text=True).stdout
    metrics = json.loads(report)
    (work / "eval.json").write_text(report)
    return (zebra_rate(work / "h2z", env), zebra_rate(work / "z2h", env),
            cycle_l1(metrics, "A"), cycle_l1(metrics, "B"))


def cycle_l1(metrics: dict, side: str) -> float:
    """``cycle_L1_<side>`` from ``ganvas eval --json`` output."""
    key = f"cycle_L1_{side}"
    if key not in metrics:
        raise SystemExit(f"no {key} in the ganvas eval output: {sorted(metrics)}")
    return float(metrics[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset with testA/ and testB/ held back")
    parser.add_argument("--start", type=float, required=True, help="when both runs started (Unix seconds)")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders")
    parser.add_argument("--marks", type=float, nargs="+", required=True, help="minutes after --start")
    parser.add_argument("--out", type=Path, required=True, help="TSV file the results are appended to")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not CLASSIFIER.is_file():
        raise SystemExit(f"the classifier is missing: {CLASSIFIER}")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for mark in args.marks:
        for run in args.runs:
            checkpoint, minutes, step = nearest_checkpoint(run, args.start, mark)
            work = args.out.parent / f"{run.name}-{mark:g}"
            scores = judge(checkpoint, args.data, work, env)
            line = "\t".join([run.name, f"{mark:g}", f"{minutes:.1f}", str(step), *(f"{s:.3f}" for s in scores)])
            with args.out.open("a") as table:
                table.write(line + "\n")
            print(line, flush=True)


if __name__ == "__main__":
    main()
