#!/usr/bin/env bash
# The CUDA path in one short run on a fresh GPU machine (a copy of this tree, Python with pip):
#   1. install the project (pip install -e '.[dev]'; a torch already installed is kept),
#   2. run the CUDA tests (pytest -m cuda) and, with two or more GPUs, a two-process nccl run under torchrun,
#   3. time training steps of pix2pix U-Net-256 ngf 64 and CycleGAN ResNet-9 ngf 64 at 256 px, batch 1 and 8:
#      fp32 eager as the reference code trains (--reference), then Ganvas's defaults (bf16 or fp16 autocast,
#      channels_last, cuDNN autotuning) eager, then the same compiled (torch.compile),
#   4. write report.md (and the raw logs) under OUT_DIR.
# Each stage has its own time limit, so the whole script ends within about 8 minutes even when one hangs.
#
# Usage: scripts/gpu_check.sh [OUT_DIR]      (default: $OUT, else ./gpu_check_out)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START )) s"; }

{ date -u; nvidia-smi 2>&1 | head -20; "$PY" --version; } > "$OUT_DIR/machine.txt"

echo "== install ($(elapsed))"
if ! timeout 200 "$PY" -m pip install --quiet -e '.[dev]' > "$OUT_DIR/install.log" 2>&1; then
    echo "pip install -e '.[dev]' failed or timed out; trying without the dev extra" | tee -a "$OUT_DIR/install.log"
    timeout 120 "$PY" -m pip install --quiet -e . pytest pytest-timeout >> "$OUT_DIR/install.log" 2>&1
fi
"$PY" - >> "$OUT_DIR/machine.txt" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"gpu {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
EOF

echo "== CUDA tests ($(elapsed))"
QT_QPA_PLATFORM=offscreen timeout 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests \
    > "$OUT_DIR/cuda_tests.txt" 2>&1
echo "exit code $?" >> "$OUT_DIR/cuda_tests.txt"

GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "${GPUS:-0}" -ge 2 ]; then
    echo "== two GPUs under torchrun ($(elapsed))"
    DDP=$(mktemp -d)
    "$PY" - "$DDP" <<'EOF'
import json, sys
from pathlib import Path
from engine.core.config import DataConfig, TrainConfig
from engine.families.pix2pix.family import Pix2Pix, Pix2PixConfig
from engine.train.training import RunSpec
root = Path(sys.argv[1])
data = Pix2Pix.write_synthetic_dataset(root / "data", (64, 64), count=16)
spec = RunSpec("pix2pix", Pix2PixConfig(depth=6, ngf=16, ndf=16), TrainConfig(steps=20, batch_size=4, size=(64, 64),
               device="cuda", compile="off", checkpoint_every=10, sample_every=10), DataConfig(path=str(data)))
(root / "spec.json").write_text(json.dumps(spec.to_json()))
EOF
    timeout 120 "$PY" -m torch.distributed.run --standalone --nproc-per-node=2 -m engine.train.train_process \
        --spec "$DDP/spec.json" "$DDP/run" > "$OUT_DIR/two_gpus.jsonl" 2> "$OUT_DIR/two_gpus.err"
    echo "{\"exit_code\": $?}" >> "$OUT_DIR/two_gpus.jsonl"
fi

echo "== benchmarks ($(elapsed))"
# The CLI once (the same code as below), then every configuration in one process; one JSON line each.
timeout 60 "$PY" -m engine.cli bench train pix2pix --device cuda --size 256 --ngf 64 --batch-size 1 --reference \
    --json > "$OUT_DIR/bench_cli.json" 2>&1
timeout 270 "$PY" - "$OUT_DIR/bench.jsonl" > "$OUT_DIR/bench.log" 2>&1 <<'EOF'
import json, sys, time
import torch
from engine.train.bench import bench_train
from engine.core.registry import get_family

out = open(sys.argv[1], "a", buffering=1)
models = {"pix2pix": {"ngf": 64, "ndf": 64}, "cyclegan": {"ngf": 64, "ndf": 64, "n_blocks": 9}}
modes = {"reference fp32 eager": {"reference": True}, "ganvas eager": {"compile": "off"},
         "ganvas compiled": {"compile": "on"}}
for mode, options in modes.items():  # eager first: a long compilation must not cost the eager figures
    for name, fields in models.items():
        for batch in (1, 8):
            config = get_family(name).auto_config((256, 256), fields)
            began = time.perf_counter()
            try:
                result = bench_train(name, config, size=(256, 256), batch_size=batch, device="cuda", steps=10,
                                     warmup=3, repeat=3, **options)
            except Exception as exc:  # report and go on to the next configuration
                result = {"family": name, "batch_size": batch, "error": f"{type(exc).__name__}: {exc}"[:300]}
            result.update(mode=mode, wall_s=round(time.perf_counter() - began, 1),
                          peak_mb=round(torch.cuda.max_memory_allocated() / 2**20))
            print(json.dumps(result), file=out)
            torch.cuda.reset_peak_memory_stats()
            torch._dynamo.reset()
EOF
echo "exit code $?" >> "$OUT_DIR/bench.log"

echo "== report ($(elapsed))"
"$PY" - "$OUT_DIR" <<'EOF' > "$OUT_DIR/report.md"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("# Ganvas GPU check\n\n```\n" + (out / "machine.txt").read_text().strip() + "\n```\n")
tests = (out / "cuda_tests.txt").read_text().strip().splitlines()
print("## CUDA tests\n\n```\n" + "\n".join(tests[-15:]) + "\n```\n")
if (out / "two_gpus.jsonl").exists():
    lines = (out / "two_gpus.jsonl").read_text().strip().splitlines()
    print("## Two GPUs (torchrun, nccl)\n\n```\n" + "\n".join(lines[-3:]) + "\n```\n")
rows = [json.loads(l) for l in (out / "bench.jsonl").read_text().splitlines()] if (out / "bench.jsonl").exists() else []
reference = {(r["family"], r["batch_size"]): r.get("s_per_iter") for r in rows if r["mode"].startswith("reference")}
print("## Training step, 256 px (median of 3 repeats of 10 steps)\n")
print("| family | batch | mode | precision | s/iter | ms/image | x reference | peak MiB | wall s |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    base = reference.get((r["family"], r["batch_size"]))
    speed = f"{base / r['s_per_iter']:.2f}" if base and r.get("s_per_iter") else "-"
    print(f"| {r['family']} | {r['batch_size']} | {r['mode']} | {r.get('precision', '-')} | {r.get('s_per_iter', '-')} "
          f"| {r.get('ms_per_image', '-')} | {speed} | {r.get('peak_mb', '-')} | {r.get('wall_s', '-')} |")
for r in rows:
    if "error" in r:
        print(f"\n{r['family']} batch {r['batch_size']} {r['mode']}: {r['error']}")
print("\nCLI: `" + (out / "bench_cli.json").read_text().strip()[-400:] + "`")
EOF
echo "done in $(elapsed)" | tee -a "$OUT_DIR/report.md"
