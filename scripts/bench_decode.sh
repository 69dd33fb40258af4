#!/usr/bin/env bash
# The GPU decode benchmark in one device call: the PyTorch anchors, then ours, on the same GPU.
#   scripts/bench_decode.sh OUTDIR [cca binary]
# Writes OUTDIR/anchors.csv, OUTDIR/decode.csv (ours and anchors) and OUTDIR/decode.svg, and prints the tables.
set -euo pipefail
out=${1:?output directory}
cca=${2:-./.device/cca}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 "$(dirname "$0")/decode_anchors.py" --csv "$out/anchors.csv"
"$cca" bench decode --device cuda --anchors "$out/anchors.csv" --csv "$out/decode.csv" --svg "$out/decode.svg"
