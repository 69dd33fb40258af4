"""PyTorch anchors for `cca bench prefill`: timed on the same GPU, in the same device call as ours.

    python3 scripts/prefill_anchors.py --csv anchors.csv [--seqs 1024,2048,4096,8192,16384]

Rows (bf16, E = 2048, d = 128, B = 1):
  torch-mha      the PyTorch MHA layer: q/k/v/o bf16 linears, RoPE, scaled_dot_product_attention (cuDNN backend)
  zaya-cca       transformers ZayaAttention (SDPA) with Hq = Hkv = 4 (CCA, C = 4)       [causal only]
  zaya-ccgqa     transformers ZayaAttention (SDPA) with Hq = 8, Hkv = 2 (CCGQA, the ZAYA1 shape) [causal only]
  cudnn-core-cca / cudnn-core-ccgqa   cuDNN SDPA alone on the latent shapes (K/V expanded to Hq heads outside the timing)
Times are medians of CUDA-event timings after warm-up, cycling through several input sets.
"""
import argparse
import csv
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

E, D = 2048, 128
DEVICE, DTYPE = "cuda", torch.bfloat16


def median_ms(run, inputs, repeats=30, warmup=5):
    for i in range(warmup):
        run(inputs[i % len(inputs)])
    times = []
    for i in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run(inputs[i % len(inputs)])
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def write_rows(path, rows):
    """Writes the anchor rows as CSV (the format `cca bench` reads) and prints them."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seq", "causal", "ms", "tflops"])
        writer.writerows(rows)
    for row in rows:
        print(f"{row[0]:22s} S={row[1]:6d} {'causal' if row[2] else 'full  '} {row[3]:9.3f} {row[4]}")


def rope_tables(seq, dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, device=DEVICE, dtype=torch.float32) / dim))
    freqs = torch.outer(torch.arange(seq, device=DEVICE, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(DTYPE), emb.sin().to(DTYPE)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class TorchMHA(torch.nn.Module):
    def __init__(self, heads=16):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (torch.nn.Linear(E, E, bias=False) for _ in range(4))

    def forward(self, x, cos, sin, causal):
        b, s, _ = x.shape
        shape = (b, s, self.heads, D)
        q = rotate(self.q(x).view(shape).transpose(1, 2), cos, sin)
        k = rotate(self.k(x).view(shape).transpose(1, 2), cos, sin)
        v = self.v(x).view(shape).transpose(1, 2)
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.o(a.transpose(1, 2).reshape(b, s, E))


def zaya_layer(heads, kv_heads):
    from transformers import ZayaConfig
    from transformers.models.zaya import modeling_zaya
    config = ZayaConfig(hidden_size=E, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=D,
                        num_hidden_layers=1, vocab_size=256)
    config._attn_implementation = "sdpa"
    layer = modeling_zaya.ZayaAttention(config, layer_idx=0).to(DEVICE, DTYPE).eval()
    with torch.no_grad():
        layer.qk_norm.temp.fill_(1.0)
    rotary = modeling_zaya.ZayaRotaryEmbedding(config).to(DEVICE)
    return layer, rotary, config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--seqs", default="1024,2048,4096,8192,16384")
    args = parser.parse_args()
    seqs = [int(s) for s in args.seqs.split(",")]
    rows = []
    torch.manual_seed(0)
    mha = TorchMHA().to(DEVICE, DTYPE).eval()
    zaya = {"zaya-cca": zaya_layer(4, 4), "zaya-ccgqa": zaya_layer(8, 2)}
    with torch.no_grad():
        for seq in seqs:
            inputs = [torch.randn(1, seq, E, device=DEVICE, dtype=DTYPE) for _ in range(3)]
            cos, sin = rope_tables(seq, D, 10000.0)
            for causal in (True, False):
                ms = median_ms(lambda x: mha(x, cos, sin, causal), inputs)
                rows.append(("torch-mha", seq, causal, ms, ""))
            for name, (layer, rotary, config) in zaya.items():
                positions = torch.arange(seq, device=DEVICE)[None]
                try:
                    embeddings = rotary(inputs[0], positions, layer_type=config.layer_types[0])
                except TypeError:
                    embeddings = rotary(inputs[0], positions)
                ms = median_ms(lambda x: layer(x, attention_mask=None, position_embeddings=embeddings), inputs)
                rows.append((name, seq, True, ms, ""))
            for name, (heads, kv_heads) in {"cudnn-core-cca": (4, 4), "cudnn-core-ccgqa": (8, 2)}.items():
                qkv = []
                for _ in range(3):
                    q = torch.randn(1, heads, seq, D, device=DEVICE, dtype=DTYPE)
                    k, v = (torch.randn(1, kv_heads, seq, D, device=DEVICE, dtype=DTYPE).repeat_interleave(heads // kv_heads, dim=1)
                            for _ in range(2))
                    qkv.append((q, k, v))
                for causal in (True, False):
                    def core(t):
                        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                            return F.scaled_dot_product_attention(*t, is_causal=causal)
                    ms = median_ms(core, qkv)
                    flops = 4 * seq * seq * heads * D * (0.5 if causal else 1.0)
                    rows.append((name, seq, causal, ms, f"{flops / ms / 1e9:.0f}"))
            print(f"S={seq} done", flush=True)
    write_rows(args.csv, rows)


if __name__ == "__main__":
    main()
