"""PyTorch anchors for `cca bench decode --device cuda`: timed on the same GPU, in the same device call as ours.

    python3 scripts/decode_anchors.py --csv anchors.csv [--batches 1,8,32] [--contexts 1024,16384,131072] [--mha-context 16384]

Rows (bf16, d = 128, one query token per sequence; CSV method,batch,context,us,bytes_per_s,tokens_per_s):
  sdpa-ccgqa   scaled_dot_product_attention of 8 query heads over a [B, 2, context, 128] key and value cache: the
               fastest of cuDNN with grouped heads, cuDNN over K/V expanded to 8 heads outside the timing, and
               PyTorch's own backend choice (printed); the bytes counted are the unexpanded cache's, as for ours
  sdpa-mha     the same with 16 heads, at --mha-context
  copy         a device-to-device copy of 4 GiB: bytes read plus written per second
Times are medians of CUDA-event timings after warm-up.
"""
import argparse
import csv
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

D, DEVICE, DTYPE = 128, "cuda", torch.bfloat16


def median_us(run, repeats=50, warmup=5):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    return statistics.median(times)


# Every backend, named (torch 2.11's SDPBackend is a pybind11 enum, which cannot be iterated).
ALL_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def sdpa_us(batch, context, q_heads, kv_heads):
    """The fastest that works of: cuDNN with grouped heads (enable_gqa), cuDNN over K/V expanded to the query heads
    (outside the timing), PyTorch's own choice with grouped heads. Returns (microseconds, how)."""
    q = torch.randn(batch, q_heads, 1, D, device=DEVICE, dtype=DTYPE)
    k = torch.randn(batch, kv_heads, context, D, device=DEVICE, dtype=DTYPE)
    v = torch.randn(batch, kv_heads, context, D, device=DEVICE, dtype=DTYPE)
    group = q_heads // kv_heads
    expanded = (k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)) if group > 1 else (k, v)
    results = []
    for how, backends, keys, values, gqa in [("cudnn-gqa", [SDPBackend.CUDNN_ATTENTION], k, v, group > 1),
                                             ("cudnn-expanded", [SDPBackend.CUDNN_ATTENTION], *expanded, False),
                                             ("auto-gqa", ALL_BACKENDS, k, v, group > 1)]:
        try:
            with sdpa_kernel(backends):
                run = lambda: F.scaled_dot_product_attention(q, keys, values, enable_gqa=gqa)
                run()
                results.append((median_us(run), how))
        except (RuntimeError, TypeError):
            continue
    del q, k, v, expanded
    torch.cuda.empty_cache()
    return min(results)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--contexts", default="1024,16384,131072")
    parser.add_argument("--mha-context", type=int, default=16384)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    contexts = [int(c) for c in args.contexts.split(",")]
    rows = []
    for name, q_heads, kv_heads, shape_contexts in [("ccgqa", 8, 2, contexts), ("mha", 16, 16, [args.mha_context])]:
        for batch in batches:
            for context in shape_contexts:
                us, how = sdpa_us(batch, context, q_heads, kv_heads)
                cache_bytes = batch * context * kv_heads * 2 * D * 2
                rows.append([f"sdpa-{name}", batch, context, us, cache_bytes / (us * 1e-6), ""])
                print(f"sdpa {name:5s} B={batch:3d} context {context:7d}: {us:9.1f} us, "
                      f"{cache_bytes / (us * 1e-6) / 1e12:.2f} TB/s ({how})", flush=True)
    source = torch.empty(1 << 31, device=DEVICE, dtype=DTYPE)
    destination = torch.empty_like(source)
    us = median_us(lambda: destination.copy_(source), repeats=20)
    copied = 2 * source.numel() * source.element_size()
    rows.append(["copy", 0, 0, us, copied / (us * 1e-6), ""])
    print(f"device copy: {copied / (us * 1e-6) / 1e12:.2f} TB/s (read + write)", flush=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "batch", "context", "us", "bytes_per_s", "tokens_per_s"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
