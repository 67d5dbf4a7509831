"""Measure every figure of issue 19 in one sitting and write a markdown report (plus the raw JSON).

Run it on a quiet machine (nothing else busy: the load average is recorded at the start and the end)::

    python scripts/bench_sitting.py --warm-only            # any time before: export and compile every model
    python scripts/bench_sitting.py --out sitting.md       # the sitting itself (about 5-7 minutes)

What it measures, with ``--threads`` threads (default 2, ``OMP_NUM_THREADS`` of every command it runs):

1. The compile cache is warmed first: one untimed pass of each network on each compiled backend
   (``ganvas bench infer ... --steps 1 --repeat 1``); its ``prepare_s`` is the first-use export and compile
   time when the cache was cold (reported apart, marked cold or cached).
2. The backend table, ``ganvas bench infer FAMILY [--checkpoint NAME] --backend torch,onnxruntime,openvino``
   (plus ``openvino-bf16`` where the CPU has bf16 units):
   the bundled models at their native size (facades, facades-spade, horse2zebra, emoji-faces), the issue's
   networks at 256 x 256 (U-Net-256 ngf 32 and 64, ResNet-6 ngf 32, ResNet-9 ngf 64), and the bundled CycleGAN
   on a 512 x 512 canvas; one command per network, the backends timed in turn with the same repetitions,
   chosen from the warm-up pass (5 repeats of about 0.8 s each for the slowest backend).
3. The app, ``xvfb-run -a python -m desktop.bench_latency --model M --backend B`` for the default facades model
   (torch, onnxruntime, openvino and the app's default auto) and the SPADE model (torch, onnxruntime, openvino):
   stroke-to-display p50/p95, the full pass after pen-up, the longest event-loop stall, the model's own full and
   preview passes.
4. The int8 trial, ``scripts/int8_trial.py`` (``openvino-int8`` against ``openvino`` on held-out inputs of each
   bundled model: PSNR and the speed ratio; ``--warm-only`` quantizes and caches the models).

Every command runs under a time limit (``--limit`` seconds each); one that fails or times out is reported as
such and the sitting goes on. Without ``xvfb-run`` (and ``Xvfb``) the script stops at once unless ``--skip-app``.
``--quick`` checks the whole pipeline on a busy machine (64 px networks, one repetition; 4 minutes at load 3-8
with a warm cache, 13 with a cold one): its figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def native_bf16() -> bool:
    """Whether this CPU has bf16 units OpenVINO uses (then ``openvino-bf16`` joins every row and app run)."""
    probe = "from engine.infer.backends import native_bf16; print(native_bf16())"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() == "True"


BF16 = ("openvino-bf16",) if native_bf16() else ()
BACKENDS = ("torch", "onnxruntime", "openvino", *BF16)
COMPILED = BACKENDS[1:]
TIMING_TARGET_MS = 800.0  # timed work per repeat (5 repeats)


@dataclass(frozen=True)
class Row:
    """One network of the backend table: ``ganvas bench infer FAMILY ARGS``."""

    label: str
    family: str
    args: tuple[str, ...]
    target_ms: float | None = None  # the goal for a full pass, where it sets one
    quick_args: tuple[str, ...] | None = None  # what --quick runs instead


ROWS = (
    Row("facades (bundled pix2pix U-Net-256 ngf 28, 256 px)", "pix2pix", ("--checkpoint", "facades"), 40.0),
    Row("facades-spade (bundled SPADE, 128 px)", "spade", ("--checkpoint", "facades-spade")),
    Row("horse2zebra (bundled CycleGAN ResNet-6 ngf 32, its native 128 px)", "cyclegan", ("--checkpoint", "horse2zebra"), None),
    Row("emoji-faces (bundled pix2pix U-Net-128 ngf 24, 128 px)", "pix2pix", ("--checkpoint", "emoji-faces")),
    Row("U-Net-256 ngf 32 (untrained)", "pix2pix", ("--size", "256", "--ngf", "32"), None,
        ("--size", "64", "--depth", "6", "--ngf", "32")),
    Row("U-Net-256 ngf 64 (untrained)", "pix2pix", ("--size", "256", "--ngf", "64"), None,
        ("--size", "64", "--depth", "6", "--ngf", "64")),
    Row("ResNet-6 ngf 32 (untrained)", "cyclegan", ("--size", "256", "--ngf", "32", "--n-blocks", "6"), 110.0,
        ("--size", "64", "--ngf", "32", "--n-blocks", "6")),
    Row("ResNet-9 ngf 64 (untrained)", "cyclegan", ("--size", "256", "--ngf", "64", "--n-blocks", "9"), None,
        ("--size", "64", "--ngf", "64", "--n-blocks", "9")),
    Row("horse2zebra on a 512 x 512 canvas", "cyclegan", ("--checkpoint", "horse2zebra", "--size", "512"), 120.0,
        ("--checkpoint", "horse2zebra", "--size", "128")),
)
APP_RUNS = (("facades", ("torch", "onnxruntime", "openvino", *BF16, "auto")),
            ("facades-spade", ("torch", "onnxruntime", "openvino", *BF16)))
APP_GOALS = {"facades": {"p50": 30.0, "p95": 50.0, "full": 40.0, "gap": 50.0},  # the issue's, per model
             "facades-spade": {"p50": 60.0, "preview": 60.0, "gap": 50.0}}
GOAL_NAMES = {"p50": "stroke-to-display p50", "p95": "p95", "full": "full pass after pen-up",
              "gap": "longest event-loop gap", "preview": "preview pass"}


@dataclass
class Sitting:
    """What the sitting ran and measured (written as the raw JSON)."""

    threads: int
    quick: bool
    limit_s: float
    env: dict[str, str]
    commands: list[dict[str, Any]] = field(default_factory=list)

    def run(self, argv: list[str], label: str) -> dict[str, Any]:
        """Run ``argv`` (its own process group, killed whole past the limit); record and return the outcome."""
        started = time.perf_counter()
        record: dict[str, Any] = {"label": label, "argv": argv}
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=self.limit_s)
            record.update(rc=process.returncode, stdout=out, stderr=err[-4000:])
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            record.update(rc=None, timed_out=True, stdout=out, stderr=(err or "")[-4000:])
        record["wall_s"] = round(time.perf_counter() - started, 1)
        self.commands.append(record)
        state = "timed out" if record.get("timed_out") else f"rc {record['rc']}"
        print(f"[{record['wall_s']:6.1f} s] {state}: {label}", flush=True)
        return record


def ganvas(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def shown(argv: list[str]) -> str:
    """A command as a person types it."""
    if argv[1:3] == ["-m", "engine.cli"]:
        return "ganvas " + " ".join(argv[3:])
    return " ".join(argv).replace(sys.executable, "python")


def json_lines(record: dict[str, Any]) -> list[dict[str, Any]]:
    lines = []
    for line in (record.get("stdout") or "").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return lines


def failure(record: dict[str, Any]) -> str:
    if record.get("timed_out"):
        return f"timed out after {record['wall_s']:.0f} s"
    last = next((line for line in reversed((record.get("stderr") or "").splitlines()) if line.strip()), "")
    return f"failed (rc {record['rc']}): {last[:160]}"


# --- the three parts ----------------------------------------------------------------------------------------
def warm(sitting: Sitting, rows: list[Row], cache: Path) -> dict[str, dict[str, Any]]:
    """One untimed pass per network on each backend; per row label, per backend the JSON (prepare_s, ms)."""
    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        args = row.quick_args if sitting.quick and row.quick_args else row.args
        before = set(cache.rglob("*")) if cache.is_dir() else set()
        argv = ganvas("bench", "infer", row.family, *args, "--backend", ",".join(BACKENDS), "--steps", "1",
                      "--repeat", "1", "--warmup", "0", "--json")
        record = sitting.run(argv, f"warm: {row.label}")
        after = set(cache.rglob("*")) if cache.is_dir() else set()
        results[row.label] = dict(zip(BACKENDS, json_lines(record), strict=False))  # one line per backend, in turn
        new = after - before
        results[row.label]["_new"] = [kind for kind, suffix in (("ONNX exported", ".onnx"), ("OpenVINO compiled", ".blob"))
                                      if any(path.suffix == suffix for path in new)]
        results[row.label]["_record"] = None if record["rc"] == 0 else failure(record)
    return results


def steps_for(ms: float | None) -> int:
    if not ms or ms <= 0:
        return 1
    return max(1, min(50, math.floor(TIMING_TARGET_MS / ms)))


def backend_table(sitting: Sitting, rows: list[Row], warmed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One ``ganvas bench infer ... --backend torch,onnxruntime,openvino`` per row (the same steps for each backend,
    chosen from the slowest warm-up pass)."""
    results: dict[str, Any] = {}
    for row in rows:
        args = row.quick_args if sitting.quick and row.quick_args else row.args
        estimates = [(warmed.get(row.label, {}).get(b) or {}).get("ms_per_image") for b in BACKENDS]
        steps = 1 if sitting.quick else steps_for(max((e for e in estimates if e), default=None))
        argv = ganvas("bench", "infer", row.family, *args, "--backend", ",".join(BACKENDS), "--steps", str(steps),
                      "--repeat", "1" if sitting.quick else "5", "--warmup", "1" if sitting.quick else "3", "--json")
        record = sitting.run(argv, f"timed: {row.label}")
        lines = dict(zip(BACKENDS, json_lines(record), strict=False))
        results[row.label] = {"command": shown(argv)}
        for backend in BACKENDS:
            item = lines.get(backend) or {"error": failure(record)}
            results[row.label][backend] = {**item, "requested": backend}
    return results


def int8_trial(sitting: Sitting, folder: Path, warm_only: bool) -> dict[str, Any]:
    """``scripts/int8_trial.py`` on the bundled models (``warm_only``: one input and round, to fill the cache)."""
    out = folder / "int8.json"
    settings = ["--held-out", "1", "--rounds", "1"] if warm_only or sitting.quick else []  # warm: the same calibration
    settings += ["--calibration", "4"] if sitting.quick else []
    argv = [sys.executable, str(ROOT / "scripts" / "int8_trial.py"), "--threads", str(sitting.threads),
            "--json", str(out), *settings]
    record = sitting.run(argv, "int8 trial" + (" (warming)" if warm_only else ""))
    if record["rc"] == 0 and out.is_file():
        return {**json.loads(out.read_text()), "command": shown(argv), "table": record["stdout"]}
    return {"error": failure(record), "command": shown(argv)}


def app_latency(sitting: Sitting, folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    runs = APP_RUNS if not sitting.quick else (("facades", ("torch", "openvino")), ("facades-spade", ("openvino",)))
    for model, backends in runs:
        for backend in backends:
            out = folder / f"latency-{model}-{backend}.json"
            argv = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", sys.executable, "-m", "desktop.bench_latency",
                    "--model", model, "--backend", backend, "--json", str(out)]
            record = sitting.run(argv, f"app: {model} on {backend}")
            key = f"{model} / {backend}"
            if record["rc"] == 0 and out.is_file():
                results[key] = json.loads(out.read_text())
            else:
                results[key] = {"error": failure(record)}
            results[key]["command"] = (f"xvfb-run -a python -m desktop.bench_latency --model {model} "
                                       f"--backend {backend}")
    return results


# --- the report -----------------------------------------------------------------------------------------------
def ms(item: dict[str, Any] | None) -> str:
    if not item:
        return "not run"
    if "error" in item:
        return item["error"]
    if item.get("backend") != item.get("requested", item.get("backend")):
        return f"fell back: {item.get('note')}"
    return f"{item['ms_per_image']:.1f} ms"


def fmt(value: float | None, target: float | None = None) -> str:
    if value is None:
        return "-"
    mark = "" if target is None else (" (ok)" if value <= target else f" (> {target:.0f})")
    return f"{value:.0f}{mark}"


def report(meta: dict[str, Any], warmed: dict[str, Any], table: dict[str, Any], app: dict[str, Any],
           int8: dict[str, Any], rows: list[Row]) -> str:
    lines = [f"# Issue 19 sitting, {meta['started']}", "",
             f"- machine: {meta['cpu']}, {meta['cores']} cores; {meta['threads']} threads per command "
             f"(`OMP_NUM_THREADS={meta['threads']}`)",
             f"- versions: {meta['versions']}",
             f"- load average (1, 5, 15 min): {meta['load_start']} at the start, {meta['load_end']} at the end",
             f"- wall time: {meta['wall_s'] / 60:.1f} min; compile cache {meta['cache']}"]
    if meta["quick"]:
        lines += ["- **--quick: a pipeline check (64 px networks, one repetition); these figures mean nothing**"]
    lines += ["", "## First use: export and compile (`prepare_s`, the warm-up pass)", "",
              f"| network | {' | '.join(COMPILED)} | new in the cache |", "|---" * (len(COMPILED) + 2) + "|"]
    for row in rows:
        entry = warmed.get(row.label, {})
        cells = [f"{entry[b]['prepare_s']:.1f} s" if b in entry else "-" for b in COMPILED]
        state = entry.get("_record") or (", ".join(entry.get("_new", [])) or "nothing (all cached)")
        lines.append(f"| {row.label} | {' | '.join(cells)} | {state} |")
    lines += ["", "The ONNX export happens on onnxruntime's first use (openvino reads the same file), the OpenVINO compile "
              "on its own (per input shape and thread count)."]
    if meta.get("warm_only"):
        return "\n".join(lines) + "\n"
    lines += ["", "## Backends: ms per full pass, batch 1, fp32 unless named (median of 5 repeats)", "",
              f"| network | {' | '.join(BACKENDS)} | goal |", "|---" * (len(BACKENDS) + 2) + "|"]
    for row in rows:
        cells = table.get(row.label, {})
        torch_ms = (cells.get("torch") or {}).get("ms_per_image")
        parts = []
        for backend in BACKENDS:
            text = ms(cells.get(backend))
            value = (cells.get(backend) or {}).get("ms_per_image")
            if backend != "torch" and torch_ms and value and cells[backend].get("backend") == backend:
                text += f" ({torch_ms / value:.2f}x)"
            parts.append(text)
        goal = f"<= {row.target_ms:.0f} ms" if row.target_ms else ""
        lines.append(f"| {row.label} | {' | '.join(parts)} | {goal} |")
    lines += ["", "Commands:", ""] + [f"- `{cells['command']}`" for cells in table.values()]
    lines += ["", "## The app (`desktop.bench_latency` under Xvfb, scripted 3 s stroke at 60 events/s)", ""]
    if not app:
        lines.append("Not run (--skip-app).")
    else:
        lines += ["| model / backend | stroke-to-display p50 / p95 / max (ms) | frames shown | full pass after pen-up "
                  "(ms) | longest event-loop gap (ms), gaps > 50 ms | model alone: full / preview (size) |",
                  "|---|---|---|---|---|---|"]
        for key, item in app.items():
            if "error" in item:
                lines.append(f"| {key} | {item['error']} | | | | |")
                continue
            goal = APP_GOALS.get(key.split(" / ")[0], {})
            latency = item["stroke_to_display_ms"]
            ran = "" if key.endswith(item["backend"]) else f" (ran {item['backend']}: {item['backend_note']})"
            full = ", ".join(fmt(v, goal.get("full")) for v in item["full_after_pen_up_ms"])
            preview = item["preview_size"]
            lines.append(
                f"| {key}{ran} | {fmt(latency['p50'], goal.get('p50'))} / {fmt(latency['p95'], goal.get('p95'))} / "
                f"{fmt(latency['max'])} | {item['frames_shown']} of {item['requests']} | {full} | "
                f"{fmt(item['longest_gap_ms'], goal.get('gap'))}, {item['gaps_over_50ms']} | "
                f"{fmt(item['model_full_ms'])} / {fmt(item['model_preview_ms'], goal.get('preview'))} "
                f"({preview[0]}x{preview[1]}{', native' if preview == item['native_size'] else ', downscaled'}) |")
        lines += ["", "Goals (marked in the table): " + "; ".join(
            f"{model}: " + ", ".join(f"{GOAL_NAMES[k]} <= {v:.0f} ms" for k, v in goals.items())
            for model, goals in APP_GOALS.items()) + "; facades at its native size (no downscaled preview)."]
    lines += ["", "## int8 (`openvino-int8` against `openvino` fp32, see docs/backends.md)", ""]
    if not int8:
        lines.append("Not run (--skip-int8).")
    elif "error" in int8:
        lines.append(f"`{int8['command']}` {int8['error']}")
    else:
        table = int8["table"]
        lines += [table[table.find("int8 trial ("):].strip(), "", f"Command: `{int8['command']}`"]
    return "\n".join(lines) + "\n"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("torch", "onnxruntime", "openvino", "PySide6"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found) + f", Python {platform.python_version()}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("sitting.md"), help="markdown report (default sitting.md); "
                        "the raw figures go beside it as .json")
    parser.add_argument("--threads", type=int, default=2, help="threads per command (default 2)")
    parser.add_argument("--limit", type=float, default=240, help="seconds allowed per command (default 240)")
    parser.add_argument("--cache", type=Path, help="compile cache folder (default: Ganvas's own, "
                        "$GANVAS_CACHE_DIR or ~/.cache/ganvas/compiled); --cold uses a new empty one")
    parser.add_argument("--cold", action="store_true", help="start from an empty compile cache (first-use times)")
    parser.add_argument("--warm-only", action="store_true", help="only warm the compile cache, then stop")
    parser.add_argument("--skip-app", action="store_true", help="leave out the app latency runs (no Xvfb needed)")
    parser.add_argument("--skip-int8", action="store_true", help="leave out the int8 trial (needs nncf)")
    parser.add_argument("--only", help="comma-separated words: keep the table rows whose label holds one")
    parser.add_argument("--quick", action="store_true", help="a fast pipeline check (figures mean nothing)")
    args = parser.parse_args(argv)
    if not args.skip_app and not args.warm_only:
        missing = [tool for tool in ("xvfb-run", "Xvfb") if shutil.which(tool) is None]
        if missing:
            print(f"bench_sitting: {' and '.join(missing)} not found: the app latency runs need a virtual display "
                  "(apt-get install xvfb), or pass --skip-app", file=sys.stderr)
            return 2
    if not args.skip_int8 and importlib.util.find_spec("nncf") is None:
        print("bench_sitting: the int8 trial needs nncf (pip install nncf, or pip install -e '.[dev]'), or pass "
              "--skip-int8", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ganvas-sitting-"))
    from engine.infer.backends import CACHE_ENV, cache_root

    cache = (work / "cache") if args.cold else (args.cache or cache_root())
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), CACHE_ENV: str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    rows = [row for row in ROWS if not args.only or any(word in row.label for word in args.only.split(","))]
    sitting = Sitting(args.threads, args.quick, args.limit, env)
    started, load_start = time.perf_counter(), os.getloadavg()
    meta: dict[str, Any] = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
                            "cores": os.cpu_count(), "threads": args.threads, "versions": versions(),
                            "quick": args.quick, "warm_only": args.warm_only, "cache": str(cache),
                            "load_start": ", ".join(f"{v:.2f}" for v in load_start)}
    warmed = warm(sitting, rows, cache)
    table: dict[str, Any] = {}
    app: dict[str, Any] = {}
    int8: dict[str, Any] = {}
    if args.warm_only and not args.skip_int8:
        int8_trial(sitting, work, warm_only=True)
    if not args.warm_only:
        table = backend_table(sitting, rows, warmed)
        if not args.skip_app:
            app = app_latency(sitting, work)
        if not args.skip_int8:
            int8 = int8_trial(sitting, work, warm_only=False)
    meta["load_end"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    meta["wall_s"] = time.perf_counter() - started
    raw = {"meta": meta, "warm": {k: {b: v for b, v in e.items() if b != "_record" or v} for k, e in warmed.items()},
           "backends": table, "app": app, "int8": int8, "commands": [{k: v for k, v in c.items() if k != "stdout"}
                                                        for c in sitting.commands]}
    text = report(meta, warmed, table, app, int8, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(text)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')} ({meta['wall_s'] / 60:.1f} min)")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(c.get("rc") == 0 for c in sitting.commands) else 1


if __name__ == "__main__":
    sys.exit(main())
