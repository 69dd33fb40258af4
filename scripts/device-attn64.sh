#!/usr/bin/env bash
# Device run for branch attn64 (removed before merging): the attention self-tests (the Hopper forward at
# head dims 128 and 64, the backward, packed documents, the layer cases that run them), then GPT-2-small
# training against its PyTorch anchors in the same call, the d = 128 backward at 16k, a per-kernel ncu profile of one training step, and
# the head-dim-64 forward's other key tile (128 keys in 6 stages instead of 192 in 4) through
# CCA_KERNEL_SOURCES: an ncu profile of the attention kernels alone.
# Expects the static release build at .device/cca. Writes $OUT/attn64/{gpu.txt,selftest-*.log,A.csv,
# anchors.log,bench.log,backward.log,p.csv,p.txt,tile128.csv,tile128.txt}.
set -uo pipefail
out="${OUT:?}/attn64"
mkdir -p "$out"
cca=./.device/cca
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"

selftest() {  # filter, seconds, log name, extra environment
    local log="$out/selftest-$3.log"
    env ${4:-} timeout "$2" "$cca" selftest --device cuda --filter "$1" > "$log" 2>&1
    echo "selftest --filter \"$1\" ${4:-}: exit $?"
    grep -E "^(FAIL|worst)|passed" "$log" | head -40
}
selftest attention 150 attention

PYTHONUNBUFFERED=1 timeout 60 python3 scripts/train_anchors.py --csv "$out/A.csv" --configs gpt2-small --steps 10 \
    > "$out/anchors.log" 2>&1
echo "anchors exit $?"; tail -4 "$out/anchors.log"
anchors=()
[ -s "$out/A.csv" ] && anchors=(--anchors "$out/A.csv")
timeout 60 "$cca" bench train --device cuda --steps 10 --models mha-gpt2-small "${anchors[@]}" > "$out/bench.log" 2>&1
echo "bench exit $?"
cat "$out/bench.log"

# The head-dim-128 backward (its elementwise step changed too) against BENCHMARKS.md's figures.
timeout 40 "$cca" bench backward --device cuda --seqs 16384 --repeats 5 > "$out/backward.log" 2>&1
echo "bench backward exit $?"
cat "$out/backward.log"

if ! command -v ncu > /dev/null; then echo "ncu not found: no per-kernel profile"; exit 0; fi
timeout 75 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$out/p.csv" \
    "$cca" bench train --device cuda --steps 1 --models mha-gpt2-small > /dev/null 2>&1
echo "ncu exit $?"
python3 scripts/kernel_profile.py "$out/p.csv" --steps 4 --top 20 | tee "$out/p.txt"

# The other key tile at d = 64: the same source with BLOCK_N 128 and 6 stages (the same 209 KB the host gives).
variant=$(mktemp -d)
cp Sources/CCA/CUDA/Kernels/*.cu Sources/CCA/CUDA/Kernels/*.cuh "$variant"/
sed -i -e 's/^constexpr int BLOCK_N = D == 128 ? 128 : 192;/constexpr int BLOCK_N = 128;/' \
       -e 's/^constexpr int STAGES = D == 128 ? 3 : 4;/constexpr int STAGES = D == 128 ? 3 : 6;/' "$variant/attention_wgmma.cu"
grep -E "^constexpr int (BLOCK_N|STAGES) " "$variant/attention_wgmma.cu"
CCA_KERNEL_SOURCES="$variant" timeout 45 ncu --clock-control none --metrics gpu__time_duration.sum --csv \
    --kernel-name regex:attention --log-file "$out/tile128.csv" \
    "$cca" bench train --device cuda --steps 1 --models mha-gpt2-small > /dev/null 2>&1
echo "ncu (128-key tiles) exit $?"
python3 scripts/kernel_profile.py "$out/tile128.csv" --steps 4 --top 5 | tee "$out/tile128.txt"
rm -rf "$variant"
