"""Cross-check `cca forward` against the transformers ZAYA attention layer (the reference CCA implementation).

    python3 scripts/zaya_reference.py generate DIR   # random ZayaAttention layers, inputs and float64 outputs
    python3 scripts/zaya_reference.py compare DIR    # compare DIR/<case>/y*.safetensors written by `cca forward`
                                                     # and DIR/<case>/backward.safetensors written by `cca backward`

Each case directory gets config.json (our keys), weights.safetensors (the module's own state_dict names),
input.safetensors (x, optional mask), reference.safetensors (y computed in float64 by ZayaAttention) and,
for unpadded cases, grad_output.safetensors (dy) and reference_backward.safetensors (dx and grad.<name>
from autograd in float64).
"""
import inspect
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import ZayaConfig
from transformers.models.zaya import modeling_zaya

CASES = [
    dict(name="ccgqa", hidden=256, heads=4, kv_heads=2, head_dim=32, seq=37, batch=2, fraction=0.5, theta=5e6, mask=False),
    dict(name="cca", hidden=128, heads=2, kv_heads=2, head_dim=32, seq=20, batch=1, fraction=1.0, theta=1e4, mask=False),
    dict(name="ccgqa-g4", hidden=256, heads=8, kv_heads=2, head_dim=16, seq=9, batch=3, fraction=0.5, theta=5e6, mask=False),
    dict(name="padded", hidden=128, heads=4, kv_heads=1, head_dim=32, seq=11, batch=2, fraction=0.5, theta=5e6, mask=True),
]


def rotary(config, x, positions):
    embedding = modeling_zaya.ZayaRotaryEmbedding(config)
    if "layer_type" in inspect.signature(embedding.forward).parameters:
        return embedding(x, positions, layer_type=config.layer_types[0])
    return embedding(x, positions)


def generate(root):
    torch.manual_seed(0)
    for case in CASES:
        config = ZayaConfig(
            hidden_size=case["hidden"], num_attention_heads=case["heads"], num_key_value_heads=case["kv_heads"],
            head_dim=case["head_dim"], num_hidden_layers=1, vocab_size=64,
            rope_parameters={"hybrid": {"rope_type": "default", "rope_theta": case["theta"],
                                        "partial_rotary_factor": case["fraction"]}})
        config._attn_implementation = "sdpa"
        layer = modeling_zaya.ZayaAttention(config, layer_idx=0).double()
        with torch.no_grad():
            for name, parameter in layer.named_parameters():
                if name.endswith("temp"):
                    parameter.copy_(1 + 0.2 * torch.randn_like(parameter))
                else:
                    parameter.copy_(torch.randn_like(parameter) / parameter.shape[-1] ** 0.5)
        b, s, e = case["batch"], case["seq"], case["hidden"]
        x = torch.randn(b, s, e, dtype=torch.float64)
        positions = torch.arange(s)[None].expand(b, s)
        cos, sin = rotary(config, x, positions)
        mask = None
        if case["mask"]:
            valid = torch.ones(b, s, dtype=torch.bool)
            valid[0, :3] = False            # left padding
            valid[1, -2:] = False           # right padding
            allowed = torch.tril(torch.ones(s, s, dtype=torch.bool))[None, None] & valid[:, None, None, :]
            allowed |= ~valid[:, None, :, None]  # padded query rows attend anywhere; their output is not compared
            mask = {"causal": allowed, "conv": valid.to(torch.float64)}
        x.requires_grad_(not case["mask"])
        y, _ = layer(x, attention_mask=mask, position_embeddings=(cos, sin))
        if case["mask"]:
            y = y * valid[:, :, None]
        else:
            dy = torch.randn_like(y)
            y.backward(dy)
            gradients = {"dx": x.grad.float()}
            gradients.update({"grad." + name: p.grad.float().contiguous() for name, p in layer.named_parameters()})
        y = y.detach()
        directory = os.path.join(root, case["name"])
        os.makedirs(directory, exist_ok=True)
        save_file({k: v.float().contiguous() for k, v in layer.state_dict().items()}, os.path.join(directory, "weights.safetensors"))
        inputs = {"x": x.detach().float()}
        if case["mask"]:
            inputs["mask"] = valid.to(torch.int64)
        save_file(inputs, os.path.join(directory, "input.safetensors"))
        save_file({"y": y.float()}, os.path.join(directory, "reference.safetensors"))
        if not case["mask"]:
            save_file({"dy": dy.float()}, os.path.join(directory, "grad_output.safetensors"))
            save_file(gradients, os.path.join(directory, "reference_backward.safetensors"))
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({"attention": "cca", "hidden_size": e, "num_attention_heads": case["heads"],
                       "num_key_value_heads": case["kv_heads"], "head_dim": case["head_dim"],
                       "rope_theta": case["theta"], "partial_rotary_factor": case["fraction"], "temperature": "linear"}, f)
        print("generated", case["name"], "weights:", sorted(layer.state_dict().keys()))


def compare(root):
    results = []
    for case in CASES:
        directory = os.path.join(root, case["name"])
        reference = load_file(os.path.join(directory, "reference.safetensors"))["y"].double()
        for output in sorted(f for f in os.listdir(directory) if f.startswith("y")):
            y = load_file(os.path.join(directory, output))["y"].double()
            results.append((case["name"], output, relative_error(y, reference)))
        backward = os.path.join(directory, "backward.safetensors")
        if os.path.exists(backward):
            ours, expected = load_file(backward), load_file(os.path.join(directory, "reference_backward.safetensors"))
            if sorted(ours) != sorted(expected):
                results.append((case["name"], "backward names " + str(sorted(set(ours) ^ set(expected))), float("inf")))
            for name in sorted(set(ours) & set(expected)):
                results.append((case["name"], name, relative_error(ours[name].double(), expected[name].double())))
    failures = 0
    for name, what, error in results:
        ok = error < 1e-5
        failures += not ok
        print(f"{name:10s} {what:44s} relative error {error:.2e} {'ok' if ok else 'FAIL'}")
    print(f"{len(results) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


def relative_error(value, reference):
    return ((value - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


if __name__ == "__main__":
    {"generate": generate, "compare": compare}[sys.argv[1]](sys.argv[2])
