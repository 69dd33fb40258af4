#!/usr/bin/env bash
# zayaprefill's device call (removed before merging): the decode engine self-test cases (prompt chunks on the
# flash kernels beside continuing ones, GQA/MLA/CCA), then scripts/bench_zaya.sh, which runs the zaya cases
# (sliding layers, packed prompts beside continuing chunks, the experts on cuBLAS), `cca bench zaya` and the
# transformers anchor on the same random ZAYA1-8B directory. Results under $OUT/zayaprefill/.
set -uo pipefail
out="${OUT:?OUT must name the output folder}/zayaprefill"
mkdir -p "$out"
timeout 90 .device/cca selftest --device cuda --filter "decode engine" 2>&1 | tee "$out/selftest-decode-engine.txt"
echo "decode engine selftest exit ${PIPESTATUS[0]}" | tee -a "$out/timeline.txt"
scripts/bench_zaya.sh "$out"
