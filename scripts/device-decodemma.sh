#!/usr/bin/env bash
# Device call for the decodemma branch (removed before merging): the decode self-test cases (the tensor-core
# decode kernel against float64 attention), then the decode benchmark with its PyTorch anchors, in one call.
# Assumes .device/cca (static release build) and the repository root as the working directory.
# Writes $OUT/decodemma/selftest.log, anchors.csv, decode.csv, decode.svg and bench.log.
set -uo pipefail
out="${OUT:?}/decodemma"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
timeout 110 .device/cca selftest --device cuda --filter "decode" 2>&1 | tee "$out/selftest.log" | tail -n 30
echo "selftest exit ${PIPESTATUS[0]}"
timeout 120 scripts/bench_decode.sh "$out" .device/cca 2>&1 | tee "$out/bench.log"
echo "bench exit ${PIPESTATUS[0]}"
