#!/usr/bin/env bash
# The GPU training benchmark in one device call: the PyTorch anchors, then ours, on the same GPU.
#   scripts/bench_train.sh OUTDIR [cca binary] [extra `cca bench train --device cuda` options]
# Writes OUTDIR/train-anchors.csv, OUTDIR/train.csv (ours and anchors) and OUTDIR/train.svg.
set -euo pipefail
out=${1:?output directory}
cca=${2:-./.device/cca}
shift $(( $# >= 2 ? 2 : $# ))
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
(cd "$(dirname "$0")" && PYTHONUNBUFFERED=1 python3 train_anchors.py --csv "$out/train-anchors.csv")
"$cca" bench train --device cuda --anchors "$out/train-anchors.csv" --csv "$out/train.csv" --svg "$out/train.svg" "$@"
