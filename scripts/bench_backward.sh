#!/usr/bin/env bash
# The GPU backward benchmark in one device call: the PyTorch anchors, then ours, on the same GPU.
#   scripts/bench_backward.sh OUTDIR [cca binary] [extra `cca bench backward` options]
# Writes OUTDIR/backward-anchors.csv, OUTDIR/backward.csv (ours and anchors) and OUTDIR/backward.svg.
set -euo pipefail
out=${1:?output directory}
cca=${2:-./.device/cca}
shift $(( $# >= 2 ? 2 : $# ))
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
(cd "$(dirname "$0")" && PYTHONUNBUFFERED=1 python3 backward_anchors.py --csv "$out/backward-anchors.csv")
"$cca" bench backward --device cuda --anchors "$out/backward-anchors.csv" --csv "$out/backward.csv" --svg "$out/backward.svg" "$@"
