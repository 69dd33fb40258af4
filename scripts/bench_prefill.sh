#!/usr/bin/env bash
# The GPU prefill benchmark in one device call: the PyTorch anchors, then ours, on the same GPU.
#   scripts/bench_prefill.sh OUTDIR [cca binary]
# Writes OUTDIR/anchors.csv, OUTDIR/prefill.csv (ours and anchors) and OUTDIR/prefill.svg, and prints the tables.
set -euo pipefail
out=${1:?output directory}
cca=${2:-./.device/cca}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 "$(dirname "$0")/prefill_anchors.py" --csv "$out/anchors.csv"
"$cca" bench prefill --device cuda --anchors "$out/anchors.csv" --csv "$out/prefill.csv" --svg "$out/prefill.svg"
