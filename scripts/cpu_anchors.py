"""PyTorch CPU anchors for `cca bench cpu`: the same layers, float32, on the same cores and thread count.

    python3 scripts/cpu_anchors.py [--threads 2] [--hidden 1024] [--heads 2] [--head-dim 128] [--seq 2048]

Rows (B = 1, causal, `torch.no_grad()`):
  torch-mha   a PyTorch MHA layer of width E: q/k/v/o `nn.Linear` without bias, full RoPE (theta 1e4) and
              `scaled_dot_product_attention(is_causal=True)`, E / d heads of d (our `MHA` layer)
  zaya-cca    transformers `ZayaAttention` (SDPA) with Hq = Hkv = heads, head_dim d (our `CCA` layer)
Each time is the median of `--repeats` runs after two warm-ups; it prints one line per row:
`anchor NAME MS` (milliseconds), which `scripts/bench_cpu.sh` reads.
"""
import argparse
import inspect
import statistics
import time

import torch
import torch.nn.functional as F


def median_ms(run, repeats):
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class TorchMHA(torch.nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q, self.k, self.v, self.o = (torch.nn.Linear(hidden, hidden, bias=False) for _ in range(4))

    def forward(self, x, cos, sin):
        b, s, e = x.shape
        shape = (b, s, self.heads, self.head_dim)
        q = rotate(self.q(x).view(shape).transpose(1, 2), cos, sin)
        k = rotate(self.k(x).view(shape).transpose(1, 2), cos, sin)
        v = self.v(x).view(shape).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(a.transpose(1, 2).reshape(b, s, e))


def rope_tables(seq, dim, theta=10000.0):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def zaya_layer(hidden, heads, head_dim, seq):
    from transformers import ZayaConfig
    from transformers.models.zaya import modeling_zaya
    config = ZayaConfig(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=heads, head_dim=head_dim,
                        num_hidden_layers=1, vocab_size=256)
    config._attn_implementation = "sdpa"
    layer = modeling_zaya.ZayaAttention(config, layer_idx=0).eval()
    with torch.no_grad():
        layer.qk_norm.temp.fill_(1.0)
    rotary = modeling_zaya.ZayaRotaryEmbedding(config)
    positions = torch.arange(seq)[None]
    probe = torch.zeros(1, seq, hidden)
    if "layer_type" in inspect.signature(rotary.forward).parameters:
        embeddings = rotary(probe, positions, layer_type=config.layer_types[0])
    else:
        embeddings = rotary(probe, positions)
    return lambda x: layer(x, attention_mask=None, position_embeddings=embeddings)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=2, help="CCA heads (Hq = Hkv)")
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}", flush=True)
    x = torch.randn(1, args.seq, args.hidden)
    mha = TorchMHA(args.hidden, args.hidden // args.head_dim).eval()
    cos, sin = rope_tables(args.seq, args.head_dim)
    zaya = zaya_layer(args.hidden, args.heads, args.head_dim, args.seq)
    with torch.no_grad():
        print(f"anchor torch-mha {median_ms(lambda: mha(x, cos, sin), args.repeats):.1f}", flush=True)
        print(f"anchor zaya-cca {median_ms(lambda: zaya(x), args.repeats):.1f}", flush=True)


if __name__ == "__main__":
    main()
