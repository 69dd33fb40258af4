#!/usr/bin/env bash
# Device run for branch bwdfa3 (removed before merging): the attention backward self-tests (the one-pass
# wgmma kernel with 1, 3 and the chosen number of blocks per block of keys, the mma.sync and float32 tiers,
# packed documents, and the layer backward cases that run it), then `cca bench backward` at 4k and 16k with
# its PyTorch anchors (scripts/backward_anchors.py) in the same call, a per-kernel ncu profile at 16k, and the
# GPT-2-small MHA training step (d = 64, now on the wgmma backward; 47 ms a step before). Expects the static
# release build at .device/cca. Writes $OUT/bwdfa3/{gpu.txt,selftest-*.log,backward-anchors.csv,backward.csv,
# backward.svg,bench.log,ncu.csv,ncu.txt,gpt2.log}.
set -uo pipefail
out="${OUT:?}/bwdfa3"
mkdir -p "$out"
cca=./.device/cca
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
for spec in "attention B:90" "packed attention:45" "backward :60"; do
    filter=${spec%:*} limit=${spec##*:}
    log="$out/selftest-${filter//[^a-z]/_}.log"
    timeout "$limit" "$cca" selftest --device cuda --filter "$filter" > "$log" 2>&1
    echo "selftest --filter \"$filter\": exit $?"
    grep -E "^(FAIL|worst)|passed" "$log"
done
(cd scripts && PYTHONUNBUFFERED=1 timeout 60 python3 backward_anchors.py --csv "$out/backward-anchors.csv" --seqs 4096,16384) \
    > "$out/anchors.log" 2>&1
echo "anchors exit $?"
anchors=()
[ -s "$out/backward-anchors.csv" ] && anchors=(--anchors "$out/backward-anchors.csv")
timeout 60 "$cca" bench backward --device cuda --seqs 4096 --seqs 16384 "${anchors[@]}" \
    --csv "$out/backward.csv" --svg "$out/backward.svg" > "$out/bench.log" 2>&1
echo "bench exit $?"
cat "$out/bench.log"
if command -v ncu > /dev/null; then
    timeout 45 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$out/ncu.csv" \
        "$cca" bench backward --device cuda --seqs 16384 --repeats 1 > /dev/null 2>&1
    echo "ncu exit $?"
    python3 scripts/kernel_profile.py "$out/ncu.csv" --top 15 | tee "$out/ncu.txt"
else
    echo "ncu not found: no per-kernel profile"
fi
timeout 50 "$cca" bench train --device cuda --steps 5 --models mha-gpt2-small > "$out/gpt2.log" 2>&1
echo "gpt2-small train bench exit $?"
grep -E "gpt2|tokens/s|ms" "$out/gpt2.log" | tail -6
