#!/usr/bin/env python3
"""Reference ids from the Python `tokenizers` library for the Swift tokenizer tests.

Reads one JSON request on stdin and writes one JSON answer on stdout, so that a test needs a single
Python start:

    {"build_dir": DIR or null, "corpus": FILE, "tokenizers": [FILE, ...], "texts": [TEXT, ...],
     "patterns": [PATTERN, ...]}

With `build_dir`, tokenizer files of several styles are first built there with `tokenizers` itself
(trained on `corpus`): GPT-2-like byte level, the same with added tokens of every flag, Llama-3-like
(split pattern + byte level + ignore_merges + BOS template), Llama-2-like (Prepend/Replace normalizers,
byte fallback, Replace/ByteFallback/Fuse/Strip decoders), Mistral-like (Metaspace prepend_scheme
"first"), Gemma-like (Replace normalizer only), a Metaspace-split one, and one with NFC/Lowercase/Strip
normalizers and Split behaviours. Their paths join `tokenizers`.

For every tokenizer file and text the answer holds the ids with and without special tokens, the decoded
text with and without special tokens skipped, and the decoding of a few seeded random id sequences:

    {"files": [FILE, ...], "results": {FILE: {"ids": [[...]], "ids_plain": [[...]], "decoded": [...],
     "decoded_skip": [...], "random_ids": [[...]], "random_decoded": [...]}}}

For every pattern and text, "matches" holds the byte ranges [start, end) of the pattern's non-empty
matches as `tokenizers` finds them (a `Split` pre-tokenizer that keeps only the matches).

Usage: python3 scripts/tokenizers_reference.py < request.json
"""
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers
from tokenizers.implementations import ByteLevelBPETokenizer, SentencePieceBPETokenizer

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus_lines(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    # A few non-English lines so that merges and byte fallback meet more than ASCII.
    return text.splitlines() + ["naïve café — déjà vu", "日本語のテキスト、中文文本", "emoji 🎉🎉 ok", "Ελληνικά κείμενα"]


def save(tokenizer, directory, name):
    path = os.path.join(directory, name)
    tokenizer.save(path)
    return path


def edit(path, change):
    """Rewrites a saved tokenizer.json through `change(dict)` and checks that tokenizers still loads it."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    change(data)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
    Tokenizer.from_file(path)
    return path


def build(directory, corpus, scale=1):
    """Writes the reference files; `scale` multiplies the (small) vocabulary sizes, for benchmarks."""
    lines = corpus_lines(corpus)
    paths = []

    gpt2 = ByteLevelBPETokenizer(add_prefix_space=False)
    gpt2.train_from_iterator(lines, vocab_size=600 * scale, min_frequency=2, special_tokens=["<|endoftext|>"],
                             show_progress=False)
    paths.append(save(gpt2, directory, "gpt2_like.json"))

    gpt2.add_tokens([AddedToken("<tag>", lstrip=True, rstrip=True, normalized=False),
                     AddedToken("hello", single_word=True, normalized=True),
                     AddedToken(" world", normalized=True),
                     AddedToken("ands", normalized=False)])
    gpt2.add_special_tokens([AddedToken("<|pad|>", special=True, normalized=False)])

    def legacy_merges(data):
        # The older "left right" string form of merges (byte-level tokens never contain a space).
        data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    paths.append(edit(save(gpt2, directory, "gpt2_added.json"), legacy_merges))

    llama3 = Tokenizer(models.BPE(ignore_merges=True))
    llama3.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    llama3.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700 * scale, min_frequency=2, show_progress=False,
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    llama3.train_from_iterator(lines, trainer)
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])])
    paths.append(save(llama3, directory, "llama3_like.json"))

    piece = SentencePieceBPETokenizer(unk_token="<unk>", replacement="▁")
    piece.train_from_iterator(lines, vocab_size=500 * scale, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"],
                              show_progress=False)
    base = save(piece, directory, "metaspace_split.json")

    def add_byte_fallback(data):
        vocab = data["model"]["vocab"]
        for byte in range(256):
            vocab.setdefault("<0x%02X>" % byte, len(vocab))
        data["model"]["byte_fallback"] = True
        data["model"]["fuse_unk"] = True

    def bos_template(data):
        data["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [data["model"]["vocab"]["<s>"]], "tokens": ["<s>"]}}}

    sentencepiece_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}

    def metaspace_split(data):
        # No byte fallback: characters outside the vocabulary become <unk>, one each.
        data["normalizer"] = None  # SentencePieceBPETokenizer's NFKC, which the Swift side refuses (no NFKC tables)
        data["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    paths.append(edit(base, metaspace_split))

    def fused_unknowns(data):
        metaspace_split(data)
        data["model"]["fuse_unk"] = True
    paths.append(edit(save(piece, directory, "unk_fused.json"), fused_unknowns))

    def llama2(data):
        add_byte_fallback(data)
        bos_template(data)
        data["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        data["pre_tokenizer"] = None
        data["decoder"] = sentencepiece_decoder
    paths.append(edit(save(piece, directory, "llama2_like.json"), llama2))

    def mistral(data):
        add_byte_fallback(data)
        bos_template(data)
        data["normalizer"] = None
        data["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
        data["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    paths.append(edit(save(piece, directory, "mistral_like.json"), mistral))

    def gemma(data):
        add_byte_fallback(data)
        data["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
        data["pre_tokenizer"] = None
        data["decoder"] = {"type": "Sequence", "decoders": sentencepiece_decoder["decoders"][:3]}
    paths.append(edit(save(piece, directory, "gemma_like.json"), gemma))

    def mixed(data):
        data["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": "\\s{2,}"}, "content": " "}]}
        data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Contiguous", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[,.;:!?]"}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}]}
        data["post_processor"] = {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 0], "cls": ["<|endoftext|>", 0],
                                  "trim_offsets": True, "add_prefix_space": True}
    paths.append(edit(save(gpt2, directory, "mixed_pipeline.json"), mixed))

    affixes = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    affixes.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s+"), behavior="removed", invert=False)
    affixes.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=500 * scale, min_frequency=2, show_progress=False, special_tokens=["<unk>"],
        continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    paths.append(save(affixes, directory, "affixes_no_decoder.json"))
    return paths


def answer(paths, texts):
    results = {}
    for path in paths:
        tokenizer = Tokenizer.from_file(path)
        ids = [tokenizer.encode(text).ids for text in texts]
        plain = [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]
        generator = random.Random(len(texts))
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        random_ids = [[generator.randrange(size) for _ in range(generator.randrange(1, 12))] for _ in range(40)]
        results[path] = {
            "ids": ids,
            "ids_plain": plain,
            "decoded": [tokenizer.decode(sequence, skip_special_tokens=False) for sequence in ids],
            "decoded_skip": [tokenizer.decode(sequence, skip_special_tokens=True) for sequence in ids],
            "random_ids": random_ids,
            "random_decoded": [tokenizer.decode(sequence, skip_special_tokens=False) for sequence in random_ids],
        }
    return {"files": paths, "results": results}


def byte_ranges(pattern, text):
    splitter = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
    ranges = []
    for _, (start, end) in splitter.pre_tokenize_str(text):
        byte_start = len(text[:start].encode("utf-8"))
        ranges.append([byte_start, byte_start + len(text[start:end].encode("utf-8"))])
    return ranges


def main():
    request = json.load(sys.stdin)
    paths = list(request.get("tokenizers", []))
    if request.get("build_dir"):
        paths = build(request["build_dir"], request["corpus"]) + paths
    result = answer(paths, request["texts"])
    result["matches"] = [[byte_ranges(pattern, text) for text in request["texts"]] for pattern in request.get("patterns", [])]
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
