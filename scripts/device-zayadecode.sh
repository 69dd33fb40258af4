#!/usr/bin/env bash
# zayadecode's device call (removed before merging): the self-tests of the decode step's expert, router and
# stream kernels, an ncu profile of a 4-layer ZAYA1-8B-shaped decode step, and the full benchmark with its
# transformers anchor (scripts/bench_zaya.sh, which also runs `selftest --filter zaya`).
set -uo pipefail
out="$OUT/zayadecode"
mkdir -p "$out"
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/timeline.txt"; }

for filter in moe "zaya router" "decode graphs" "decode engine"; do
    stamp "selftest --filter $filter"
    timeout 100 .device/cca selftest --device cuda --filter "$filter" > "$out/selftest-${filter// /-}.txt" 2>&1
    echo "exit $?" >> "$out/selftest-${filter// /-}.txt"
    grep -E "FAIL|passed|worst" "$out/selftest-${filter// /-}.txt"
done

stamp "save 4 layers"
PYTHONUNBUFFERED=1 timeout 60 python3 scripts/zaya_gpu_anchor.py save /tmp/zaya4 --layers 4 2>&1 | tail -2
stamp "ncu"
timeout 100 ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip 600 --launch-count 300 \
    --log-file "$out/p.csv" .device/cca bench zaya --device cuda --model /tmp/zaya4 --prompt 64 --steps 64 --batch 1 \
    --batch-prompt 8 > "$out/ncu-bench.txt" 2>&1
# One zaya_input_scale a step: the profiled window's step count.
steps=$(grep -c zaya_input_scale "$out/p.csv")
echo "steps in the window: $steps"
python3 scripts/kernel_profile.py "$out/p.csv" --steps "${steps:-1}" --top 40 | tee "$out/profile.txt"

stamp "bench_zaya"
ZAYA_DIR=/tmp/zaya-full scripts/bench_zaya.sh "$out/bench" > "$out/bench-all.txt" 2>&1
grep -E "FAIL|passed|worst" "$out/bench/selftest.txt"
cat "$out/bench/bench.txt" "$out/bench/anchor.json"
stamp "done"
