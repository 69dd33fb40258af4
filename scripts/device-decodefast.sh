#!/usr/bin/env bash
# Device run for branch decodefast (removed before merging): the decode self-tests, then the decode benchmark
# with its PyTorch (cuDNN SDPA) anchors in the same call. Expects the static release build at .device/cca.
# Writes $OUT/decodefast/{selftest.log,bench.log,anchors.csv,decode.csv,decode.svg}.
set -uo pipefail
out="${OUT:?}/decodefast"
mkdir -p "$out"
cca=./.device/cca
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
timeout 100 "$cca" selftest --device cuda --filter "decode" > "$out/selftest.log" 2>&1
status=$?
grep -E "^(FAIL|worst)|passed" "$out/selftest.log"
echo "selftest exit $status"
timeout 140 scripts/bench_decode.sh "$out" "$cca" > "$out/bench.log" 2>&1
echo "bench exit $?"
sed -n '/^Decode attention/,$p' "$out/bench.log"
