#!/bin/bash
# device-trainfast.sh: the trainfast branch's H200 call (removed before merging). Assumes .device/cca (static
# release build) and the repository root as working directory; writes under $OUT/trainfast/.
set -u
R="$OUT/trainfast"; mkdir -p "$R"
CCA=.device/cca
status=0
# The self-tests of the operations this branch changed, the training steps (a GPU step against the CPU
# step), and the other callers of rms_norm and residual_add: decode, ZAYA, the layers' backward passes (MLA).
for filter in "rms_norm" "residual add" "cross_entropy" "swiglu" "rotary" "adamw" "column sums" "train" "decode engine" "decode graphs" "zaya model" "backward "; do
    echo "== selftest --filter '$filter'"
    log="$R/selftest-${filter// /_}.txt"
    timeout 120 $CCA selftest --device cuda --filter "$filter" > "$log" 2>&1 || status=1
    grep -E "^FAIL" "$log" | cut -c1-160 | head -5; tail -1 "$log"
done
echo "== anchors"
timeout 200 python3 scripts/train_anchors.py --csv "$R/A.csv" --configs gpt2-small --steps 10 > "$R/anchors.txt" 2>&1 || status=1
tail -5 "$R/anchors.txt"
echo "== bench"
timeout 200 $CCA bench train --device cuda --steps 10 --models mha-gpt2-small --anchors "$R/A.csv" > "$R/bench.txt" 2>&1 || status=1
tail -8 "$R/bench.txt"
echo "== profile"
if command -v ncu > /dev/null; then
    timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$R/p.csv" \
        $CCA bench train --device cuda --steps 1 --models mha-gpt2-small > "$R/ncu.txt" 2>&1 || status=1
    python3 scripts/kernel_profile.py "$R/p.csv" --steps 4 --top 30 | tee "$R/profile.txt"
else
    echo "ncu not found"; status=1
fi
echo "== device-trainfast status $status"
exit $status
