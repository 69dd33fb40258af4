#!/usr/bin/env bash
# bwdfa3's device run (removed before merging): the attention backward self-tests (the wgmma path and the
# others), then the backward benchmark with its PyTorch anchors in the same call, then a per-kernel ncu profile.
# Assumes .device/cca (static release build) and the repository root as the working directory.
set -uo pipefail
out="${OUT:?}/bwdfa3"
mkdir -p "$out"
cca=./.device/cca
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
status=0
for filter in "attention B" "packed attention" "backward "; do
    echo "== selftest --filter \"$filter\""
    timeout 150 "$cca" selftest --device cuda --filter "$filter" > "$out/selftest-part.txt" 2>&1
    cat "$out/selftest-part.txt" >> "$out/selftest.txt"
    grep -E "^FAIL|^worst|passed, " "$out/selftest-part.txt"
    grep -q "passed, 0 failed" "$out/selftest-part.txt" || status=1
done
echo "== bench backward"
(cd scripts && PYTHONUNBUFFERED=1 timeout 90 python3 backward_anchors.py --csv "$out/backward-anchors.csv" --seqs 4096,16384) 2>&1 | tail -5
timeout 90 "$cca" bench backward --device cuda --seqs 4096 --seqs 16384 --anchors "$out/backward-anchors.csv" \
    --csv "$out/backward.csv" --svg "$out/backward.svg" 2>&1 | tee "$out/bench.txt"
if command -v ncu > /dev/null; then
    echo "== ncu (S = 16384, one timed run)"
    timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$out/ncu.csv" \
        "$cca" bench backward --device cuda --seqs 16384 --repeats 1 > /dev/null 2>&1
    python3 scripts/kernel_profile.py "$out/ncu.csv" --top 15 | tee "$out/ncu.txt"
fi
exit $status
