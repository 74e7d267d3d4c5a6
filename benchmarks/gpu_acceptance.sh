#!/usr/bin/env bash
# The gpu path on a real GPU, for whoever first has one (issue 20, item 6): under 10 minutes on
# one GPU. On an empty calibration store it
#   1. calibrates a shortened gpu proxy (500 iterations, 64x64 LR patches, batch 64) on 10 of
#      the shipped x4 references, four at a time on a quarter GPU each,
#   2. runs a 4-trial search with the same fractional GPUs (CUDA-event runtime, CUDA peak
#      memory),
#   3. prints the calibration's leave-one-out figures and every trial's CUDA figures.
# Everything goes to $OUT (default: a temporary folder). Needs the package installed (.venv).
#   bash benchmarks/gpu_acceptance.sh [PYTHON]
set -euo pipefail
PY=${1:-$(pwd)/.venv/bin/python}
OUT=${OUT:-$(mktemp -d)}
export ESRNAS_CACHE_DIR="$OUT/cache"  # an empty store: the calibration really trains
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
cat > "$OUT/gpu_acceptance.yaml" <<'EOF'
anchors: [span_ch28]
proxy:
  preset: gpu
  train: {iterations: 500, eval_every: 250, checkpoint_every: 0}
  calibrate: {refs: 10}
resources: {max_concurrent: 4, gpus_per_trial: 0.25, cpus_per_trial: 2}
EOF
start=$(date +%s)
"$PY" -m nas.cli launch --config "$OUT/gpu_acceptance.yaml" --budget 4 --out "$OUT/run" \
  2> >(tee "$OUT/launch.err" >&2)
echo "wall: $(( $(date +%s) - start )) s"
"$PY" - "$OUT/run" <<'EOF'
import json, sys
import pandas as pd
run = sys.argv[1]
cal = json.load(open(f"{run}/calibration.json"))
p = cal["fidelity"]["scores"]["predictor"]
print(f"calibration: {cal['calibration']} | leave-one-out tau {p['kendall_tau']:+.3f}, "
      f"pairwise {p['pairwise_accuracy']:.3f}")
cols = ["trial_id", "anchor", "device", "profile_hw", "psnr", "psnr_sd", "extrapolated",
        "psnr_proxy", "runtime_ms", "runtime_ratio", "peak_memory_mb", "params", "trial_seconds"]
df = pd.read_csv(f"{run}/trials.csv")
print(df[[c for c in cols if c in df.columns]].to_string(index=False))
missing = df[df["status"] == "completed"][["runtime_ms", "peak_memory_mb"]].isna().any()
sys.exit(1 if missing.any() or not str(df["device"].iloc[0]).startswith("cuda") else 0)
EOF
