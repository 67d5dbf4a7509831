"""int8 post-training quantization trial (issue 19): is an int8 OpenVINO model worth offering?

For each bundled image-to-image model the script exports its graphs to ONNX (the compile cache's files), quantizes
each graph a real input reaches with NNCF on a small calibration set of the model's own kind of input, and
compares the int8 model with the fp32 one compiled the same way (OpenVINO, CPU, fp32 precision hint, latency
mode, ``--threads`` threads):

- PSNR of the int8 output against the fp32 output (uint8 images, as tests/engine/test_bundled.py measures), on
  held-out inputs that calibration never saw: the mean and the worst;
- the speed ratio (fp32 ms / int8 ms, medians), the two timed in alternating rounds so a change of load hits both.

The issue's rule: offer int8 only where PSNR >= 35 dB and it is at least 1.5x faster. Inputs:

- facades, facades-spade: label maps of ``facades/val`` (the right half of each pair), SPADE with seed 1;
- horse2zebra (A->B): horses of ``horse2zebra/trainA`` held back from its training (the last 100 by name,
  ``scripts/hold_back.py``);
- emoji-faces: Canny edges of face emoji at 128 px (``scripts/emoji_faces.py``, ``ganvas dataset build edges``);
  calibration from the training faces, evaluation on every tenth face (held out from training).

Usage (needs ``pip install nncf``; ``--json`` also writes the raw figures)::

    OMP_NUM_THREADS=2 python scripts/int8_trial.py [--shared ../shared/data] [--models facades,horse2zebra]
        [--calibration 16] [--held-out 8] [--rounds 7] [--threads 2] [--json FILE]
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
from engine.infer.backends import CompiledGraphs, model_key  # noqa: E402
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


# --- graphs ---------------------------------------------------------------------------------------------------
class RecordingGraphs:
    """Compiled fp32 graphs that also record the inputs each graph is called with (what the session feeds it)."""

    def __init__(self, compiled: CompiledGraphs) -> None:
        self.compiled = compiled
        self.calls: list[tuple[str, list[np.ndarray]]] = []

    def __call__(self, name: str, *inputs: torch.Tensor) -> torch.Tensor:
        self.calls.append((name, [tensor.detach().cpu().contiguous().numpy().copy() for tensor in inputs]))
        return self.compiled(name, *inputs)


def graph_inputs(session: InferenceSession, images: list[np.ndarray], options: dict[str, Any],
                 compiled: CompiledGraphs) -> dict[str, list[list[np.ndarray]]]:
    """Per graph, the input arrays of each call the session makes translating ``images``."""
    recorder = RecordingGraphs(compiled)
    session._compiled = recorder  # the session runs its full passes through the recorder
    for image in images:
        session.translate(image, **options)
    session._compiled = compiled
    calls: dict[str, list[list[np.ndarray]]] = {}
    for name, arrays in recorder.calls:
        calls.setdefault(name, []).append(arrays)
    return calls


def compile_openvino(model: Any, threads: int) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Compile ``model`` as the openvino backend does (fp32 precision hint, latency mode); a runner of inputs."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    return lambda inputs: request.infer(inputs, share_inputs=True)[0].copy()


def fixed_shape_model(onnx_path: Path, shapes: list[tuple[int, ...]]) -> Any:
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    model.reshape({port.any_name: ov.PartialShape(list(shape)) for port, shape in zip(model.inputs, shapes,
                                                                                     strict=True)})
    return model


def quantize(model: Any, calibration: list[list[np.ndarray]], preset: str) -> Any:
    """NNCF post-training quantization of an OpenVINO model on ``calibration`` (lists of input arrays)."""
    import nncf

    presets = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    return nncf.quantize(model, nncf.Dataset(calibration), preset=presets[preset], subset_size=len(calibration))


def interleaved_ms(runners: dict[str, Callable[[list[np.ndarray]], np.ndarray]], inputs: list[np.ndarray],
                   rounds: int, passes: int) -> dict[str, list[float]]:
    """ms per pass of each runner, timed in ``rounds`` alternating rounds of ``passes`` passes (order swapped
    every round, so a change of load hits each the same)."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            for _ in range(passes):
                runners[name](inputs)
            times[name].append((time.perf_counter() - start) * 1000 / passes)
    return times


def trial(name: str, shared: Path, *, calibration: int, held_out: int, rounds: int, threads: int,
          preset: str) -> dict[str, Any]:
    """The int8 trial of one bundled model (see the module docstring); one entry per graph a real input reaches."""
    session = InferenceSession.from_checkpoint(name, device="cpu")
    calibration_images, held_out_images, options = model_inputs(name, shared, calibration, held_out)
    key = model_key(session.card.family, session.card.config, session.generator)
    compiled = CompiledGraphs(session.export_graphs(), "openvino", key, threads=threads)
    calibration_calls = graph_inputs(session, calibration_images, options, compiled)
    held_out_calls = graph_inputs(session, held_out_images, options, compiled)
    graphs = []
    for graph, calls in calibration_calls.items():
        shapes = [array.shape for array in calls[0]]
        started = time.perf_counter()
        int8_model = quantize(fixed_shape_model(compiled.onnx_path(graph), shapes), calls, preset)
        quantize_s = time.perf_counter() - started
        runners = {"fp32": compile_openvino(fixed_shape_model(compiled.onnx_path(graph), shapes), threads),
                   "int8": compile_openvino(int8_model, threads)}
        scores = [psnr(to_uint8(runners["int8"](inputs)), to_uint8(runners["fp32"](inputs)))
                  for inputs in held_out_calls[graph]]
        probe = interleaved_ms(runners, held_out_calls[graph][0], rounds=1, passes=1)  # warm-up, and a cost probe
        passes = max(1, min(20, round(300 / max(1e-3, statistics.median(probe["fp32"])))))
        times = interleaved_ms(runners, held_out_calls[graph][0], rounds=rounds, passes=passes)
        fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
        psnr_mean, psnr_min = float(np.mean(scores)), float(min(scores))
        speedup = fp32_ms / int8_ms
        graphs.append({"graph": graph, "input_shapes": [list(s) for s in shapes], "calibration": len(calls),
                       "held_out": len(scores), "psnr_mean_db": round(psnr_mean, 2), "psnr_min_db": round(psnr_min, 2),
                       "fp32_ms": round(fp32_ms, 2), "int8_ms": round(int8_ms, 2), "speedup": round(speedup, 2),
                       "rounds_ms": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
                       "quantize_s": round(quantize_s, 1),
                       "qualifies": psnr_min >= PSNR_RULE_DB and speedup >= SPEED_RULE})
    return {"model": name, "family": session.card.family, "size": list(session.size), "options": options,
            "graphs": graphs, "qualifies": bool(graphs) and all(g["qualifies"] for g in graphs)}


def markdown(results: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| model | graph | PSNR int8 vs fp32, mean (worst) | fp32 | int8 | speed-up | offer int8? |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        for g in result["graphs"]:
            verdict = "yes" if g["qualifies"] else "no"
            lines.append(f"| {result['model']} | {g['graph']} {'x'.join(map(str, g['input_shapes'][0]))} | "
                         f"{g['psnr_mean_db']:.1f} dB ({g['psnr_min_db']:.1f}) | {g['fp32_ms']:.1f} ms | "
                         f"{g['int8_ms']:.1f} ms | {g['speedup']:.2f}x | {verdict} |")
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
    parser.add_argument("--preset", choices=("mixed", "performance"), default="mixed",
                        help="NNCF preset: mixed (asymmetric activations; default) or performance (symmetric)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    results = []
    for name in args.models.split(","):
        started = time.perf_counter()
        result = trial(name, args.shared, calibration=args.calibration, held_out=args.held_out, rounds=args.rounds,
                       threads=args.threads, preset=args.preset)
        result["trial_s"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(json.dumps(result), flush=True)
    load_end = os.getloadavg()
    header = (f"int8 trial ({args.preset} preset, {args.calibration} calibration / {args.held_out} held-out inputs, "
              f"{args.threads} threads); load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end")
    print(markdown(results, header))
    if args.json:
        args.json.write_text(json.dumps({"load_start": load_start, "load_end": load_end, "results": results},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
