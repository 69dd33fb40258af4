#!/usr/bin/env bash
# Device run for branch packedgpu (removed before merging): the packed-document self-tests, the existing
# training-step and attention self-tests, then whole training steps on packed documents of 1024 tokens
# against whole rows (E = 2048, T = 8192; the same tokens, in the same process) with the PyTorch MHA anchor
# of scripts/train_anchors.py in the same call. Expects the static release build at .device/cca.
# Writes $OUT/packedgpu/{selftest-*.log,anchors.csv,bench.log,train.csv}.
set -uo pipefail
out="${OUT:?}/packedgpu"
mkdir -p "$out"
cca=./.device/cca
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
for filter in "packed" "training step, gradients" "three steps" "attention B"; do
    log="$out/selftest-${filter//[^a-z]/_}.log"
    timeout 75 "$cca" selftest --device cuda --filter "$filter" > "$log" 2>&1
    echo "selftest --filter \"$filter\": exit $?"
    grep -E "^(FAIL|worst)|passed" "$log"
done
timeout 75 python3 scripts/train_anchors.py --csv "$out/anchors.csv" --configs wide --steps 5 > "$out/anchors.log" 2>&1
echo "anchors exit $?"
anchors=()
[ -s "$out/anchors.csv" ] && anchors=(--anchors "$out/anchors.csv")
timeout 110 "$cca" bench train --device cuda --models mha-wide,cca-wide,ccgqa-wide --steps 5 --document-length 1024 \
    "${anchors[@]}" --csv "$out/train.csv" \
    > "$out/bench.log" 2>&1
echo "bench exit $?"
sed -n '/^Training steps on the GPU/,$p' "$out/bench.log"
grep -E "packed|skipped" "$out/bench.log" | grep -v "^|" || true
