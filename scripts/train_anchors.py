"""PyTorch anchors for `cca bench train --device cuda`: the same language model written in PyTorch, timed on the
same GPU in the same device call as ours.

    python3 scripts/train_anchors.py --csv anchors.csv [--configs gpt2-small,wide] [--steps 20]

The model is ours, layer for layer: token embedding, pre-norm blocks of RMSNorm, MHA (q/k/v/o linears
without bias, NeoX RoPE, scaled_dot_product_attention), RMSNorm and a SwiGLU MLP, a final RMSNorm and a head
tied to the embedding. Training step: bf16 autocast, fused AdamW (lr 3e-4, betas 0.9/0.95, weight decay 0.01
on matrices), gradient clipping at 1. Widths, MLP, vocabulary, T, batch and RoPE theta are those of
`TrainBenchmark.models()` (`cca bench train --device cuda`): GPT-2 small (our `gpt2-small` preset) and
the report's width (our `wide` preset, MHA). Rows: `torch-eager-<config>` / `torch-compile-<config>` with
milliseconds per step in the ms column and tokens per second in the tflops column, and
`peak-mib-torch-<eager|compile>-<config>` with `torch.cuda.max_memory_allocated` in MiB in the ms column.
"""
import argparse
import csv
import statistics
import time

import torch
import torch.nn.functional as F

DEVICE = "cuda"
CONFIGS = {
    # name: (layers, E, heads, head dim, MLP width, T, batch, vocab, rope theta)
    "gpt2-small": (12, 768, 12, 64, 2048, 1024, 16, 50304, 10000.0),
    "wide": (12, 2048, 16, 128, 5632, 8192, 1, 50304, 5e6),
}


class RMSNorm(torch.nn.Module):
    def __init__(self, width, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight.to(x.dtype)


class Block(torch.nn.Module):
    def __init__(self, e, heads, d, mlp):
        super().__init__()
        self.heads, self.d = heads, d
        self.input_norm, self.post_norm = RMSNorm(e), RMSNorm(e)
        self.q, self.k, self.v = (torch.nn.Linear(e, heads * d, bias=False) for _ in range(3))
        self.o = torch.nn.Linear(heads * d, e, bias=False)
        self.gate, self.up = torch.nn.Linear(e, mlp, bias=False), torch.nn.Linear(e, mlp, bias=False)
        self.down = torch.nn.Linear(mlp, e, bias=False)

    def forward(self, x, cos, sin):
        b, s, _ = x.shape
        h = self.input_norm(x)
        shape = (b, s, self.heads, self.d)
        q = rotate(self.q(h).view(shape).transpose(1, 2), cos, sin)
        k = rotate(self.k(h).view(shape).transpose(1, 2), cos, sin)
        v = self.v(h).view(shape).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, self.heads * self.d))
        h = self.post_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class Model(torch.nn.Module):
    def __init__(self, layers, e, heads, d, mlp, t, vocab, theta):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, e)
        self.blocks = torch.nn.ModuleList(Block(e, heads, d, mlp) for _ in range(layers))
        self.norm = RMSNorm(e)
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = F.linear(self.norm(x), self.embed.weight)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def tokens_per_second(name, compiled, steps):
    layers, e, heads, d, mlp, t, batch, vocab, theta = CONFIGS[name]
    torch.manual_seed(0)
    model = Model(layers, e, heads, d, mlp, t, vocab, theta).to(DEVICE)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=3e-4, betas=(0.9, 0.95), fused=True)
    forward = torch.compile(model) if compiled else model
    tokens = torch.randint(0, vocab, (batch, t + 1), device=DEVICE)
    torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = forward(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(5 if compiled else 3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    parameters = sum(p.numel() for p in model.parameters())
    peak_mib = torch.cuda.max_memory_allocated() / 2**20
    del model, optimizer, forward
    torch.cuda.empty_cache()
    return seconds * 1000, batch * t / seconds, parameters, peak_mib


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--configs", default="gpt2-small,wide")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for name in args.configs.split(","):
        for compiled in (False, True):
            ms, rate, parameters, peak_mib = tokens_per_second(name, compiled, args.steps)
            method = "torch-compile" if compiled else "torch-eager"
            rows.append((f"{method}-{name}", CONFIGS[name][5], True, ms, f"{rate:.0f}"))
            rows.append((f"peak-mib-{method}-{name}", CONFIGS[name][5], True, f"{peak_mib:.0f}", ""))
            print(f"{method:14s} {name:11s} {parameters / 1e6:7.1f}M parameters {ms:8.2f} ms/step {rate:10.0f} tokens/s "
                  f"peak {peak_mib:.0f} MiB", flush=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seq", "causal", "ms", "tflops"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
