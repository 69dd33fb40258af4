"""PyTorch anchors for `cca bench backward`: timed on the same GPU, in the same device call as ours.

    python3 scripts/backward_anchors.py --csv anchors.csv [--seqs 1024,2048,4096,8192,16384]

Rows (bf16, E = 2048, d = 128, B = 1, causal), each a forward + backward (gradients of the input and of
every weight, for a fixed random output gradient):
  torch-mha          the PyTorch MHA layer: q/k/v/o bf16 linears, RoPE, scaled_dot_product_attention (cuDNN)
  torch-mha-graph    the same step captured in a CUDA graph and replayed (no eager launch overhead)
  zaya-cca           transformers ZayaAttention (SDPA) with Hq = Hkv = 4 (CCA, C = 4)
  zaya-ccgqa         transformers ZayaAttention (SDPA) with Hq = 8, Hkv = 2 (CCGQA, the ZAYA1 shape)
  cudnn-backward-<m> cuDNN SDPA's backward alone (forward outside the timing) on the shapes of mha (16 heads),
                     cca (4 heads) and ccgqa (8 query heads; K/V expanded to 8 heads outside the timing);
                     TFLOP/s counted as 2.5x the causal forward's 2*S^2*H*d
  peak-mib-<m>       peak GPU memory of one layer forward + backward (torch.cuda.max_memory_allocated
                     above the inputs), in the ms column
Times are medians of CUDA-event timings after warm-up, cycling through several input sets.
"""
import argparse

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from prefill_anchors import DEVICE, DTYPE, E, D, TorchMHA, median_ms, rope_tables, write_rows, zaya_layer


def step(layer, forward, x, dy):
    """One forward + backward; gradients of x and of every weight, freed after."""
    x = x.detach().requires_grad_(True)
    forward(x).backward(dy)
    layer.zero_grad(set_to_none=True)


def peak_mib(run):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def graphed_ms(layer, forward, x, dy):
    """The step captured in a CUDA graph: the same kernels, replayed without Python or launch gaps."""
    static_x = x.detach().clone().requires_grad_(True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward(static_x).backward(dy)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        forward(static_x).backward(dy)
    return median_ms(lambda _: graph.replay(), [None])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", required=True)
    parser.add_argument("--seqs", default="1024,2048,4096,8192,16384")
    args = parser.parse_args()
    seqs = [int(s) for s in args.seqs.split(",")]
    rows = []
    torch.manual_seed(0)
    mha = TorchMHA().to(DEVICE, DTYPE)
    zaya = {"cca": zaya_layer(4, 4), "ccgqa": zaya_layer(8, 2)}
    for seq in seqs:
        inputs = [torch.randn(1, seq, E, device=DEVICE, dtype=DTYPE) for _ in range(3)]
        dy = torch.randn(1, seq, E, device=DEVICE, dtype=DTYPE)
        cos, sin = rope_tables(seq, D, 10000.0)
        mha_forward = lambda x: mha(x, cos, sin, True)
        rows.append(("torch-mha", seq, True, median_ms(lambda x: step(mha, mha_forward, x, dy), inputs), ""))
        rows.append(("torch-mha-graph", seq, True, graphed_ms(mha, mha_forward, inputs[0], dy), ""))
        rows.append(("peak-mib-torch-mha", seq, True, peak_mib(lambda: step(mha, mha_forward, inputs[0], dy)), ""))
        for name, (layer, rotary, config) in zaya.items():
            layer.train()
            positions = torch.arange(seq, device=DEVICE)[None]
            try:
                embeddings = rotary(inputs[0], positions, layer_type=config.layer_types[0])
            except TypeError:
                embeddings = rotary(inputs[0], positions)
            forward = lambda x, layer=layer, embeddings=embeddings: layer(x, attention_mask=None, position_embeddings=embeddings)[0]
            rows.append((f"zaya-{name}", seq, True, median_ms(lambda x: step(layer, forward, x, dy), inputs), ""))
            rows.append((f"peak-mib-zaya-{name}", seq, True, peak_mib(lambda: step(layer, forward, inputs[0], dy)), ""))
        for name, (heads, kv_heads) in {"mha": (16, 16), "cca": (4, 4), "ccgqa": (8, 2)}.items():
            cases = []
            for _ in range(2):
                q = torch.randn(1, heads, seq, D, device=DEVICE, dtype=DTYPE, requires_grad=True)
                k, v = (torch.randn(1, kv_heads, seq, D, device=DEVICE, dtype=DTYPE).repeat_interleave(heads // kv_heads, dim=1)
                        .requires_grad_(True) for _ in range(2))
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                cases.append((out, torch.randn_like(out), (q, k, v)))
            ms = median_ms(lambda c: torch.autograd.grad(c[0], c[2], c[1], retain_graph=True), cases)
            flops = 2.5 * 2 * seq * seq * heads * D
            rows.append((f"cudnn-backward-{name}", seq, True, ms, f"{flops / ms / 1e9:.0f}"))
        print(f"S={seq} done", flush=True)
    write_rows(args.csv, rows)


if __name__ == "__main__":
    main()
