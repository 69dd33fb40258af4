"""Small random ZAYA models and their transformers logits: the fixtures of Tests/CCATests/ZayaReferenceTests.swift.

    python3 scripts/zaya_fixture.py [OUT]   # default OUT: Tests/CCATests/Fixtures

Needs torch and transformers with `models/zaya` (5.17 or later). For each case it builds a `ZayaConfig`,
draws every parameter at a scale where each one matters (norm weights, residual scales and biases, key
temperatures, balancing biases, ...), and reseeds until every expert and the skip expert are chosen and
every routing decision has a clear margin, so that float32 rounding cannot flip a top-1 choice between
implementations. It writes OUT/<case>/ with `save_pretrained` (config.json, generation_config.json,
safetensors weights: one file, or shards with an index) and reference.safetensors holding `input_ids`
(I64 [B, S]), `attention_mask` (I64 [B, S]), `logits` (F32 [B, S, vocab], the prefill) and, for unpadded
cases, `decode_logits` (F32: transformers' own token-by-token decoding through its cache). It also writes OUT/zaya1-8b-config.json,
transformers' default `ZayaConfig()` (ZAYA1-8B).

Weights saved as bf16 are rounded first and the reference runs in float32 on the rounded values, so the
reference is exact for the file as stored.
"""
import json
import os
import sys

import torch
from transformers import ZayaConfig, ZayaForCausalLM

CASES = [
    # Both layer types (the sliding window smaller than the sequence, each type with its own RoPE),
    # a batch with left padding, right padding and none, tied embeddings, float32 weights in one file.
    dict(name="zaya-mixed", layer_types=["hybrid", "hybrid_sliding", "hybrid"], hidden=32, heads=4, kv_heads=2,
         head_dim=8, experts=4, intermediate=24, router=16, vocab=96, window=4, tied=True, head_bias=False,
         rope={"hybrid": (5e6, 0.5), "hybrid_sliding": (1e4, 1.0)}, batch=3, seq=11,
         padding=[(3, 0), (0, 2), (0, 0)], dtype="float32", shard=None),
    # A sliding first layer, CCGQA with one KV head, an untied head with a bias, bf16 weights in shards.
    dict(name="zaya-sharded-bf16", layer_types=["hybrid_sliding", "hybrid"], hidden=48, heads=2, kv_heads=1,
         head_dim=16, experts=3, intermediate=16, router=8, vocab=80, window=3, tied=False, head_bias=True,
         rope={"hybrid": (5e6, 0.25), "hybrid_sliding": (1e4, 0.5)}, batch=2, seq=10,
         padding=[(0, 0), (0, 0)], dtype="bfloat16", shard="40KB"),
]

MIN_MARGIN = 2e-3


def make_config(case):
    config = ZayaConfig(
        vocab_size=case["vocab"], hidden_size=case["hidden"], num_hidden_layers=len(case["layer_types"]),
        num_attention_heads=case["heads"], num_key_value_heads=case["kv_heads"], head_dim=case["head_dim"],
        moe_intermediate_size=case["intermediate"], num_experts=case["experts"], router_hidden_size=case["router"],
        layer_types=case["layer_types"], sliding_window=case["window"], tie_word_embeddings=case["tied"],
        lm_head_bias=case["head_bias"], max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        rope_parameters={kind: {"rope_type": "default", "rope_theta": theta, "partial_rotary_factor": fraction}
                         for kind, (theta, fraction) in case["rope"].items()})
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"
    return config


def randomize(model, case, generator):
    """Every parameter at a scale where a wrong use of it shows in the logits."""
    def normal(shape, std=1.0, mean=0.0):
        return mean + std * torch.randn(shape, generator=generator)

    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if "inv_freq" in name:
                continue
            shape = tensor.shape
            if name.endswith("balancing_biases"):
                value = normal(shape, 0.05)
                value[-1] = 0.05  # the skip expert: reachable, not dominant
            elif name.endswith("embed_tokens.weight"):
                value = normal(shape)
            elif name.endswith(("layernorm.weight", "norm.weight", "_scale", "scale")) or name.endswith("temp"):
                value = normal(shape, 0.1, 1.0)
            elif name.endswith("bias"):
                value = normal(shape, 0.1)
            elif name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
                value = normal(shape, shape[-1] ** -0.5)
            elif "conv_qk" in name:
                value = normal(shape, (shape[1] * shape[2]) ** -0.5)
            else:
                value = normal(shape, shape[-1] ** -0.5)
            tensor.copy_(value)
        if case["dtype"] == "bfloat16":
            # What the file will hold; RoPE's inverse frequencies are computed, not stored, so they stay exact.
            for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
                if "inv_freq" not in name:
                    tensor.copy_(tensor.to(torch.bfloat16).to(torch.float32))


def make_inputs(case, generator):
    batch, seq = case["batch"], case["seq"]
    ids = torch.randint(3, case["vocab"], (batch, seq), generator=generator)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    for row, (left, right) in enumerate(case["padding"]):
        mask[row, :left] = 0
        if right:
            mask[row, seq - right:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask


def routing_report(model, ids, mask):
    """The prefill's logits and, over real tokens, the smallest top-1 margin and the classes chosen."""
    records = []
    hooks = [layer.mlp.gate.register_forward_hook(lambda module, args, output: records.append((module, output[0])))
             for layer in model.model.layers]
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    for hook in hooks:
        hook.remove()
    valid = mask.reshape(-1).bool()
    margins, chosen = [], []
    for module, router_logits in records:
        biased = torch.softmax(router_logits.double(), dim=-1) + module.balancing_biases.double()
        top = biased.topk(2, dim=-1)
        margins.append((top.values[:, 0] - top.values[:, 1])[valid].min().item())
        chosen.append(sorted(set(top.indices[:, 0][valid].tolist())))
    return logits, min(margins), chosen


def decode_reference(model, ids):
    """transformers' token-by-token decoding through its cache (unpadded rows only)."""
    past, steps = None, []
    with torch.no_grad():
        for t in range(ids.shape[1]):
            out = model(input_ids=ids[:, t:t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            steps.append(out.logits)
    return torch.cat(steps, dim=1)


def build(case, root):
    config = make_config(case)
    for seed in range(1000):
        generator = torch.Generator().manual_seed(seed)
        model = ZayaForCausalLM(config).eval()
        randomize(model, case, generator)
        ids, mask = make_inputs(case, generator)
        logits, margin, chosen = routing_report(model, ids, mask)
        everything = set().union(*chosen)
        if margin >= MIN_MARGIN and everything == set(range(case["experts"] + 1)) and all(len(c) >= 2 for c in chosen):
            break
    else:
        raise SystemExit(f"{case['name']}: no seed gave clear routing")
    directory = os.path.join(root, case["name"])
    os.makedirs(directory, exist_ok=True)
    reference = {"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(), "logits": logits.float().contiguous()}
    if bool(mask.all()):
        decoded = decode_reference(model, ids)
        error = ((decoded - logits).abs().max() / logits.abs().max()).item()
        assert error < 1e-4, f"transformers' own decoding differs from its prefill by {error}"
        reference["decode_logits"] = decoded.float().contiguous()
    saved = model.to(torch.bfloat16) if case["dtype"] == "bfloat16" else model
    kwargs = {"max_shard_size": case["shard"]} if case["shard"] else {}
    saved.save_pretrained(directory, **kwargs)
    from safetensors.torch import save_file
    save_file(reference, os.path.join(directory, "reference.safetensors"), metadata={"format": "pt"})
    files = sorted(os.listdir(directory))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in files)
    print(json.dumps({"case": case["name"], "seed": seed, "min_margin": round(margin, 5), "chosen": chosen,
                      "files": files, "bytes": size}))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "CCATests", "Fixtures")
    for case in CASES:
        build(case, root)
    # transformers' defaults (ZAYA1-8B), as save_pretrained writes them.
    ZayaConfig().to_json_file(os.path.join(root, "zaya1-8b-config.json"))


if __name__ == "__main__":
    main()
