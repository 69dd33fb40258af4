"""Our attention kernel against cuDNN's SDPA, timed on the same GPU in the same device call.

    python3 scripts/attention_vs_cudnn.py path/to/cca-gpu

Shapes (bf16, d = 128, B = 1): MHA 16 heads, CCA 4 latent heads, CCGQA Hq 8 / Hkv 2; S in 1024, 4096,
16384; causal and not. cuDNN gets K/V expanded to Hq heads outside the timing (it has no GQA here).
Times are medians of CUDA-event timings after warm-up; ours come from `cca-gpu bench-attention`.
Rates count 4·S²·Hq·d, halved when causal.
"""
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

D = 128


def cudnn_ms(heads_q, heads_kv, length, causal, repeats=20, warmup=5):
    inputs = []
    for _ in range(3):  # cycle input sets so that repeated runs do not just hit the cache
        q = torch.randn(1, heads_q, length, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, heads_kv, length, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, heads_kv, length, D, device="cuda", dtype=torch.bfloat16)
        group = heads_q // heads_kv
        inputs.append((q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        run = lambda x: F.scaled_dot_product_attention(*x, is_causal=causal)
        for i in range(warmup):
            run(inputs[i % len(inputs)])
        times = []
        for i in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run(inputs[i % len(inputs)])
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    output = subprocess.run([sys.argv[1], "bench-attention"], check=True, capture_output=True, text=True).stdout
    print(output, end="")
    print(f"{'shape':<8}{'S':>7}{'causal':>8}{'ours ms':>10}{'cuDNN ms':>10}{'ratio':>8}{'ours TF/s':>11}{'cuDNN TF/s':>12}")
    for line in output.splitlines():
        if not line.startswith("ours "):
            continue
        _, name, _, hq, _, hkv, _, length, _, causal, ms, *_ = line.split()
        hq, hkv, length, causal, ms = int(hq), int(hkv), int(length), causal == "1", float(ms)
        theirs = cudnn_ms(hq, hkv, length, causal)
        flops = 4 * length * length * hq * D / (2 if causal else 1)
        print(f"{name:<8}{length:>7}{'yes' if causal else 'no':>8}{ms:>10.3f}{theirs:>10.3f}{theirs / ms:>8.2f}"
              f"{flops / ms / 1e9:>11.0f}{flops / theirs / 1e9:>12.0f}")
    print("ratio = cuDNN time / our time (above 1: ours is faster)")


if __name__ == "__main__":
    main()
