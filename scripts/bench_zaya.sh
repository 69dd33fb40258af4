#!/usr/bin/env bash
# ZAYA on the GPU in one device call, ours and the transformers anchor on the same directory.
#   scripts/bench_zaya.sh OUTDIR            (cca at .device/cca, repository root as working directory)
# 1. saves a random ZAYA1-8B-shaped directory with transformers (ZAYA_LAYERS=N for fewer layers, every tensor
#    keeping its 8B shape); 2. runs `cca selftest --filter zaya`; 3. measures the device copy rate with torch;
# 4. `cca bench zaya` on the directory; 5. the transformers anchor (`zaya_gpu_anchor.py generate`, B = 1,
# 4096-token prompt) on the same directory. Everything lands in OUTDIR; each stage has a time limit,
# so that one that hangs cannot take the whole call.
set -uo pipefail
out="${1:?usage: scripts/bench_zaya.sh OUTDIR}"
mkdir -p "$out"
dir=${ZAYA_DIR:-/tmp/zaya1-8b-random}
layers=${ZAYA_LAYERS:-40}
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/timeline.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

stamp "save $layers layers to $dir"
PYTHONUNBUFFERED=1 python3 scripts/zaya_gpu_anchor.py save "$dir" --layers "$layers" 2>&1 | tail -3 | tee "$out/save.json"

stamp "selftest"
timeout 120 .device/cca selftest --device cuda --filter zaya 2>&1 | tee "$out/selftest.txt"
selftest=${PIPESTATUS[0]}

stamp "copy bandwidth"
bandwidth=$(python3 -c '
import torch
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(20): y.copy_(x)
end.record(); torch.cuda.synchronize()
print(2 * 20 * x.numel() / (start.elapsed_time(end) / 1000))')
echo "copy (read + write) bytes/s: $bandwidth" | tee "$out/copy.txt"

stamp "cca bench zaya"
timeout 120 .device/cca bench zaya --device cuda --model "$dir" --prompt 4096 --steps 64 --batch 32 --batch-prompt 256 \
    --copy-bandwidth "$bandwidth" 2>&1 | tee "$out/bench.txt"
bench=${PIPESTATUS[0]}

stamp "transformers anchor"
PYTHONUNBUFFERED=1 timeout 150 python3 scripts/zaya_gpu_anchor.py generate "$dir" --prompt 4096 --new 32 2>&1 | tail -3 | tee "$out/anchor.json"
stamp "done: selftest exit $selftest, bench exit $bench"
