"""Running fuzz targets: one input at a time (:func:`run_input`), a seeded loop of mutations (:func:`fuzz_loop`,
the fallback when atheris is missing) and the long run's per-target report (:func:`main`, ``make fuzz``).

The long run starts one process per target so each gets its own peak memory; with atheris installed that process
is the coverage-guided fuzzer of :mod:`tests.fuzz.atheris_target`, otherwise :func:`fuzz_loop`. Usage::

    python -m tests.fuzz.driver --inputs 100000            # every target (make fuzz)
    python -m tests.fuzz.driver --inputs 2000 image pth    # some targets
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.fuzz.targets import HANG_SECONDS, TARGETS, Target, describe_crash, fresh_folder, is_ganvas_error


def quiet_decoders() -> None:
    """OpenCV and libpng log every corrupt input; a fuzz run feeds millions."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def run_input(target: Target, data: bytes, root: Path) -> tuple[str | None, float]:
    """Run one input; returns (crash description or None, seconds taken). Ganvas errors are not crashes."""
    start = time.perf_counter()
    crash = None
    try:
        target.run(data, fresh_folder(root))
    except Exception as exc:  # noqa: BLE001 - classifying every exception is the point
        if not is_ganvas_error(exc):
            crash = describe_crash(exc)
    return crash, time.perf_counter() - start


@dataclass
class Findings:
    """What one target's run found; crashes and hangs are saved as files in ``folder`` to reproduce them."""

    target: str
    folder: Path
    inputs: int = 0
    crashes: dict[str, int] = field(default_factory=dict)  # "Type at file:line" -> count
    hangs: int = 0
    slowest_s: float = 0.0

    def record(self, data: bytes, crash: str | None, seconds: float) -> None:
        self.inputs += 1
        self.slowest_s = max(self.slowest_s, seconds)
        if crash is not None:
            key = crash.split(": ")[0]
            if key not in self.crashes:
                self._save(f"crash-{len(self.crashes)}", data, crash)
            self.crashes[key] = self.crashes.get(key, 0) + 1
        if seconds > HANG_SECONDS:
            self.hangs += 1
            self._save(f"hang-{self.hangs}", data, f"{seconds:.1f} s")

    def _save(self, name: str, data: bytes, note: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{self.target}-{name}.bin").write_bytes(data)
        (self.folder / f"{self.target}-{name}.txt").write_text(note + "\n")

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self), "folder": str(self.folder)}))


def fuzz_loop(target: Target, inputs: int, seed: int, root: Path, findings: Findings,
              max_seconds: float = 0.0) -> Findings:
    """``inputs`` mutations of the target's seeds (1-3 rounds each), from ``random.Random(seed)``; stops early
    after ``max_seconds`` when that is set."""
    seeds = target.seeds(fresh_folder(root / "seeds"))
    for data in seeds:  # lazy imports happen here, not in the first timed input
        run_input(target, data, root)
    rng = random.Random(seed)
    stop_at = time.monotonic() + max_seconds if max_seconds else None
    for index in range(inputs):
        if stop_at is not None and time.monotonic() > stop_at:
            break
        data = seeds[index % len(seeds)] if index < len(seeds) else rng.choice(seeds)
        for _ in range(rng.randint(1, 3) if index >= len(seeds) else 0):
            data = target.mutate(data, rng)
        findings.record(data, *run_input(target, data, root))
        if index % 500 == 0:
            findings.write(root / "findings.json")
    findings.write(root / "findings.json")
    return findings


def _child(name: str, inputs: int, seed: int, out: Path, max_seconds: float) -> None:
    """Body of one target's process when atheris is missing."""
    quiet_decoders()
    root = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-", dir=_scratch()))
    findings = fuzz_loop(TARGETS[name], inputs, seed, root, Findings(name, out), max_seconds)
    findings.write(out / f"{name}.json")


def _scratch() -> str | None:
    """A RAM-backed folder for the inputs' files when there is one."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_target(name: str, inputs: int, seed: int, out: Path, engine: str, max_seconds: float = 0.0) -> dict:
    """One target in its own process; returns its report row (inputs, crashes, hangs, peak memory, time)."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{name}.log"
    module = "tests.fuzz.atheris_target" if engine == "atheris" else "tests.fuzz.driver"
    command = [sys.executable, "-m", module, *([name] if engine == "atheris" else ["--child", name]),
               "--inputs", str(inputs), "--seed", str(seed), "--out", str(out), "--max-seconds", str(max_seconds)]
    start = time.monotonic()
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    row = {"target": name, "engine": engine, "seconds": round(time.monotonic() - start, 1),
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": process.returncode}
    try:
        found = json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        found = {"inputs": 0, "crashes": {}, "hangs": 0, "slowest_s": 0.0}
    text = log.read_text(errors="replace")
    done = re.findall(r"Done (\d+) runs", text)
    if done:
        found["inputs"] = max(found["inputs"], int(done[-1]))
    if "ALARM: working on the last Unit for" in text or "libFuzzer: timeout" in text:
        found["hangs"] += 1
    if "out-of-memory" in text:
        found["crashes"]["out of memory (libFuzzer rss limit)"] = 1
    row.update(inputs=found["inputs"], crashes=found["crashes"], hangs=found["hangs"],
               slowest_s=round(found["slowest_s"], 2))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"targets to run (default all: {', '.join(TARGETS)})")
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fuzz-findings", help="folder for crashes, hangs, logs and the report")
    parser.add_argument("--engine", choices=("auto", "atheris", "loop"), default="auto")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="stop each target after this long even below --inputs (0: no limit)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.child:
        _child(args.child, args.inputs, args.seed, out, args.max_seconds)
        return 0
    engine = args.engine if args.engine != "auto" else ("atheris" if have_atheris() else "loop")
    if engine == "loop" and args.engine == "auto":
        print("atheris is not installed: seeded mutation loop instead of coverage-guided fuzzing", file=sys.stderr)
    names = args.targets or list(TARGETS)
    rows = []
    print(f"{'target':18s} {'engine':8s} {'inputs':>8s} {'crashes':>8s} {'hangs':>6s} {'peak MB':>8s} {'slowest':>8s}"
          f" {'time':>8s}")
    for name in names:
        row = run_target(name, args.inputs, args.seed, out, engine, args.max_seconds)
        rows.append(row)
        print(f"{name:18s} {engine:8s} {row['inputs']:8d} {sum(row['crashes'].values()):8d} {row['hangs']:6d} "
              f"{row['peak_rss_mb']:8.0f} {row['slowest_s']:7.2f}s {row['seconds']:7.0f}s", flush=True)
        for crash, count in row["crashes"].items():
            print(f"    {count} x {crash}")
    (out / "report.json").write_text(json.dumps(rows, indent=1))
    failed = any(row["crashes"] or row["hangs"] for row in rows)
    print(f"report: {out / 'report.json'}; crash and hang inputs: {out}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
