"""Reduced-precision trial (issue 19): is ``openvino-int8`` (or, with ``--backend openvino-bf16``, bf16) worth
offering for a model?

For each bundled image-to-image model the script opens two sessions, one on the ``openvino`` backend (fp32) and
one on ``openvino-int8`` calibrated on a small set of the model's own kind of input (NNCF, its mixed preset; see
docs/backends.md), and reports:

- PSNR of the int8 output against the fp32 output (uint8 images, as tests/engine/test_bundled.py measures), on
  held-out inputs that calibration never saw: the mean and the worst;
- the speed ratio (fp32 ms / int8 ms, medians of full passes), the two timed in alternating rounds so a change
  of load hits both;
- ``prepare_s``: calibration, quantization and compile (a load from the compile cache when run before).

The issue's rule: offer int8 only where PSNR >= 35 dB and it is at least 1.5x faster. Inputs:

- facades, facades-spade: label maps of ``facades/val`` (the right half of each pair), SPADE with seed 1;
- horse2zebra (A->B): horses of ``horse2zebra/trainA`` held back from its training (the last 100 by name,
  ``scripts/hold_back.py``);
- emoji-faces: Canny edges of face emoji at 128 px (``scripts/emoji_faces.py``, ``ganvas dataset build edges``);
  calibration from the training faces, evaluation on every tenth face (held out from training).

Usage (needs ``pip install nncf``; ``--json`` also writes the raw figures)::

    OMP_NUM_THREADS=2 python scripts/int8_trial.py [--shared ../shared/data] [--models facades,horse2zebra]
        [--calibration 16] [--held-out 8] [--rounds 7] [--threads 2] [--json FILE] [--backend openvino-bf16]

With ``--backend openvino-bf16`` the same figures compare bf16 against fp32 (no calibration; only on a CPU with
bf16 units). The JSON keys keep their names (``int8_ms`` is the reduced-precision backend's time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.core.imageio import read_image  # noqa: E402
from engine.infer.backends import BF16, INT8  # noqa: E402
from engine.infer.inference import InferenceSession  # noqa: E402

PSNR_RULE_DB, SPEED_RULE = 35.0, 1.5
HELD_BACK_HORSES = 100  # scripts/hold_back.py's default


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def to_uint8(output: np.ndarray) -> np.ndarray:
    """A graph's image output in [-1, 1] as uint8."""
    return np.clip(np.rint((output.astype(np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)


# --- inputs of each model's own kind ------------------------------------------------------------------------
def facade_labels(shared: Path) -> list[np.ndarray]:
    """The label maps (right halves) of facades/val, by file number."""
    files = sorted((shared / "facades" / "val").glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    return [image[:, image.shape[1] // 2:] for image in map(read_image, files)]


def held_back_horses(shared: Path) -> list[np.ndarray]:
    files = sorted(p for p in (shared / "horse2zebra" / "trainA").iterdir() if p.is_file())
    return [read_image(path) for path in files[-HELD_BACK_HORSES:]]


def emoji_edges(shared: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training faces, held-out faces) as Canny edges at 128 px, split as ``ganvas dataset build`` splits."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from emoji_faces import STYLES, is_face

    from engine.data.dataset_builder import VAL_EVERY, center_square, make_drawing

    files = [path for style in sorted(STYLES) for path in sorted((shared / "emoji" / style).glob("*.png"))
             if is_face(path.name)]
    drawings = [make_drawing(center_square(read_image(path), 128), "edges") for path in files]
    train = [d for i, d in enumerate(drawings) if i % VAL_EVERY != VAL_EVERY - 1]
    val = [d for i, d in enumerate(drawings) if i % VAL_EVERY == VAL_EVERY - 1]
    return train, val


def model_inputs(name: str, shared: Path, calibration: int, held_out: int) -> tuple[list, list, dict[str, Any]]:
    """(calibration images, held-out images, inference options) for bundled model ``name``; disjoint sets."""
    if name in ("facades", "facades-spade"):
        labels = facade_labels(shared)
        options = {"seed": 1} if name == "facades-spade" else {}
        return labels[:calibration], labels[-held_out:], options
    if name == "horse2zebra":
        horses = held_back_horses(shared)
        return horses[:calibration], horses[-held_out:], {"direction": "AtoB"}
    if name == "emoji-faces":
        train, val = emoji_edges(shared)
        return train[::max(1, len(train) // calibration)][:calibration], val[:held_out], {}
    raise SystemExit(f"no inputs known for model {name!r}")


# --- the trial ------------------------------------------------------------------------------------------------
def interleaved_ms(runners: dict[str, Callable[[], Any]], rounds: int, passes: int) -> dict[str, list[float]]:
    """ms per pass of each runner, timed in ``rounds`` alternating rounds of ``passes`` passes (order swapped
    every round, so a change of load hits each the same)."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            for _ in range(passes):
                runners[name]()
            times[name].append((time.perf_counter() - start) * 1000 / passes)
    return times


def trial(name: str, shared: Path, *, calibration: int, held_out: int, rounds: int,
          backend: str = INT8) -> dict[str, Any]:
    """The trial of ``backend`` on one bundled model (see the module docstring), through the engine's own backends."""
    calibration_images, held_out_images, options = model_inputs(name, shared, calibration, held_out)
    fp32 = InferenceSession.from_checkpoint(name, device="cpu", backend="openvino")
    int8 = InferenceSession.from_checkpoint(name, device="cpu")
    started = time.perf_counter()
    note = int8.use_backend(backend, calibration=calibration_images if backend == INT8 else ())
    prepare_s = time.perf_counter() - started
    size = list(int8.family.prepare_input(held_out_images[0], int8.card).shape[-2:])  # CycleGAN keeps the input's
    result: dict[str, Any] = {"model": name, "backend": backend, "family": int8.card.family, "size": size, "options": options,
                              "calibration": len(calibration_images), "held_out": len(held_out_images),
                              "prepare_s": round(prepare_s, 1), "note": note, "qualifies": False}
    if int8.backend != backend or fp32.backend != "openvino":
        return {**result, "error": f"{note}; {fp32.backend_note}"}
    scores = [psnr(int8.translate(image, **options), fp32.translate(image, **options)) for image in held_out_images]
    batch = fp32.family.prepare_input(held_out_images[0], fp32.card)
    runners = {"fp32": lambda: fp32.translate_tensor(batch, **options),
               "int8": lambda: int8.translate_tensor(batch, **options)}
    probe = interleaved_ms(runners, rounds=1, passes=1)  # warm-up, and what one pass costs
    passes = max(1, min(20, round(300 / max(1e-3, probe["fp32"][0]))))
    times = interleaved_ms(runners, rounds=rounds, passes=passes)
    fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
    psnr_mean, psnr_min, speedup = float(np.mean(scores)), float(min(scores)), fp32_ms / int8_ms
    return {**result, "psnr_db": [round(v, 2) for v in scores], "psnr_mean_db": round(psnr_mean, 2),
            "psnr_min_db": round(psnr_min, 2), "fp32_ms": round(fp32_ms, 2), "int8_ms": round(int8_ms, 2),
            "speedup": round(speedup, 2), "rounds_ms": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
            "qualifies": psnr_min >= PSNR_RULE_DB and speedup >= SPEED_RULE}


def markdown(results: list[dict[str, Any]], header: str, backend: str = INT8) -> str:
    short = backend.removeprefix("openvino-")
    lines = [header, "", f"| model | PSNR {short} vs fp32, mean (worst) | openvino fp32 | {backend} | speed-up | "
             f"offer {short}? |", "|---|---|---|---|---|---|"]
    for r in results:
        model = f"{r['model']} ({r['size'][0]} px)"
        if "error" in r:
            lines.append(f"| {model} | {r['error']} | | | | no |")
            continue
        lines.append(f"| {model} | {r['psnr_mean_db']:.1f} dB ({r['psnr_min_db']:.1f}) | {r['fp32_ms']:.1f} ms | "
                     f"{r['int8_ms']:.1f} ms | {r['speedup']:.2f}x | {'yes' if r['qualifies'] else 'no'} |")
    lines += ["", f"Rule: PSNR >= {PSNR_RULE_DB:.0f} dB on every held-out input and >= {SPEED_RULE}x faster."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--models", default="facades,facades-spade,horse2zebra,emoji-faces")
    parser.add_argument("--calibration", type=int, default=16, help="calibration inputs per model (default 16)")
    parser.add_argument("--held-out", type=int, default=8, help="held-out inputs for PSNR (default 8)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds (default 7)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--backend", default=INT8, choices=(INT8, BF16), help=f"the backend on trial (default {INT8})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    results = []
    for name in args.models.split(","):
        started = time.perf_counter()
        result = trial(name, args.shared, calibration=args.calibration, held_out=args.held_out, rounds=args.rounds,
                       backend=args.backend)
        result["trial_s"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(json.dumps(result), flush=True)
    load_end = os.getloadavg()
    inputs = (f"{args.calibration} calibration / " if args.backend == INT8 else "") + f"{args.held_out} held-out"
    header = (f"{args.backend.removeprefix('openvino-')} trial ({inputs} inputs per model, {args.threads} threads); "
              f"load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end")
    print(markdown(results, header, args.backend))
    if args.json:
        args.json.write_text(json.dumps({"load_start": load_start, "load_end": load_end, "results": results},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
