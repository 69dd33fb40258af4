"""ZAYA anchors with transformers: a random ZAYA1-8B-shaped model directory, its generation speed, and GPU fixtures.

    python3 scripts/zaya_gpu_anchor.py save DIR [--layers N] [--experts N] [--device cuda|cpu] [--shard 5GB]
        transformers' default ZayaConfig (ZAYA1-8B: 40 layers, E = 2048, 16 experts, vocab 262272), random
        weights in bf16 built on the device, written with save_pretrained (shards + index, as published).
        --layers/--experts shrink it for a mid-size directory on a CPU machine (every tensor keeps its 8B shape).
    python3 scripts/zaya_gpu_anchor.py generate DIR [--prompt 4096] [--new 64] [--device cuda|cpu]
        loads DIR in bf16 on the device and times greedy `generate` at B = 1 (a random prompt of --prompt
        tokens, exactly --new new tokens) after a warm-up; prints one JSON line (load seconds and peak memory,
        prefill seconds, decode tokens/s, end-to-end tokens/s, versions, device). On the CPU it is the anchor
        of `cca generate --model DIR` (same prompt length and token count).
    python3 scripts/zaya_gpu_anchor.py fixtures OUT
        the small random models of scripts/zaya_fixture.py (built and checked on the CPU, written to OUT/<case>),
        then each run again in float32 on the GPU: OUT/<case>/reference-gpu.safetensors holds its logits, and one
        JSON line per case gives their relative difference to the CPU reference. `cca logits --model OUT/<case>`
        compares against either.

Needs torch and transformers with models/zaya (5.17 or later); no network.
"""
import argparse
import json
import os
import sys
import time

import torch
from transformers import ZayaConfig, ZayaForCausalLM
import transformers


def save(args):
    config = ZayaConfig()
    if args.layers:
        config.num_hidden_layers = args.layers
        config.layer_types = config.layer_types[:args.layers]
    if args.experts:
        config.num_experts = args.experts
    start = time.perf_counter()
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(args.device):
        model = ZayaForCausalLM(config).eval()
    torch.set_default_dtype(previous)
    built = time.perf_counter() - start
    model.save_pretrained(args.directory, max_shard_size=args.shard)
    parameters = sum(p.numel() for p in model.parameters())
    files = sorted(os.listdir(args.directory))
    size = sum(os.path.getsize(os.path.join(args.directory, f)) for f in files)
    print(json.dumps({"directory": args.directory, "parameters": parameters, "layers": config.num_hidden_layers,
                      "experts": config.num_experts, "bytes": size, "files": files, "build_s": round(built, 1),
                      "total_s": round(time.perf_counter() - start, 1)}))


def peak_resident_bytes():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(args):
    cuda = args.device == "cuda"
    assert not cuda or torch.cuda.is_available(), "no GPU; pass --device cpu"
    synchronize = torch.cuda.synchronize if cuda else (lambda: None)
    start = time.perf_counter()
    # Loaded on the CPU, then moved: from_pretrained's device_map needs `accelerate`, which may be missing.
    model = ZayaForCausalLM.from_pretrained(args.directory, dtype=torch.bfloat16).to(args.device).eval()
    synchronize()
    load = time.perf_counter() - start
    load_memory = peak_resident_bytes()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(3, vocab, (1, args.prompt), generator=generator).to(args.device)
    settings = dict(do_sample=False, max_new_tokens=args.new, min_new_tokens=args.new, pad_token_id=0)

    def timed(fn):
        synchronize()
        begin = time.perf_counter()
        result = fn()
        synchronize()
        return result, time.perf_counter() - begin

    with torch.no_grad():
        model.generate(prompt[:, :64], **dict(settings, max_new_tokens=4, min_new_tokens=4))  # warm-up
        _, prefill = timed(lambda: model(input_ids=prompt, use_cache=True, logits_to_keep=1))
        output, total = timed(lambda: model.generate(prompt, **settings))
    new = output.shape[1] - prompt.shape[1]
    print(json.dumps({
        "model": os.path.basename(os.path.normpath(args.directory)), "dtype": "bfloat16", "batch": 1,
        "prompt_tokens": args.prompt, "new_tokens": new, "load_s": round(load, 2),
        "peak_resident_after_load_bytes": load_memory, "prefill_s": round(prefill, 4),
        "generate_s": round(total, 4), "decode_tokens_per_s": round(new / max(total - prefill, 1e-9), 2),
        "end_to_end_tokens_per_s": round(new / total, 2), "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "attn_implementation": model.config._attn_implementation,
        "experts_implementation": getattr(model.config, "_experts_implementation", None)}))


def fixtures(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import zaya_fixture
    from safetensors.torch import load_file, save_file
    assert torch.cuda.is_available(), "fixtures cross-checks on the GPU"
    for case in zaya_fixture.CASES:
        zaya_fixture.build(case, args.out)
        directory = os.path.join(args.out, case["name"])
        reference = load_file(os.path.join(directory, "reference.safetensors"))
        model = ZayaForCausalLM.from_pretrained(directory, dtype=torch.float32).to("cuda").eval()
        with torch.no_grad():
            logits = model(input_ids=reference["input_ids"].cuda(),
                           attention_mask=reference["attention_mask"].cuda()).logits.float().cpu()
        save_file({"logits": logits.contiguous()}, os.path.join(directory, "reference-gpu.safetensors"), metadata={"format": "pt"})
        valid = reference["attention_mask"].bool()
        cpu = reference["logits"][valid]
        error = ((logits[valid] - cpu).abs().max() / cpu.abs().max()).item()
        print(json.dumps({"case": case["name"], "gpu_vs_cpu_relative_error": error, "gpu": torch.cuda.get_device_name()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("save")
    p.add_argument("directory")
    p.add_argument("--layers", type=int)
    p.add_argument("--experts", type=int)
    p.add_argument("--device", default="cuda")
    p.add_argument("--shard", default="5GB")
    p.set_defaults(run=save)
    p = commands.add_parser("generate")
    p.add_argument("directory")
    p.add_argument("--prompt", type=int, default=4096)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--device", default="cuda")
    p.set_defaults(run=generate)
    p = commands.add_parser("fixtures")
    p.add_argument("out")
    p.set_defaults(run=fixtures)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
