#!/usr/bin/env bash
# Tokenizer training time and encoding speed against the Python tokenizers library, in one run:
#   scripts/bench_tokenizer.sh CORPUS OUTDIR
# Trains an 8192-token byte-level BPE with `cca tokenizer train`, builds Python-made files of each style
# (GPT-2-like, Llama-3-like, Llama-2/Mistral/Gemma-like) at ~6-8k tokens, then encodes CORPUS with each file
# through `cca tokenizer encode --timing` and through Python tokenizers, and checks that the ids agree.
set -euo pipefail
corpus="$1"; out="$2"
cd "$(dirname "$0")/.."
mkdir -p "$out"
cca=.build/release/cca
test -x "$cca" || { echo "build first: swift build -c release --product cca"; exit 1; }
echo "== training: cca tokenizer train --vocab 8192 --special '<|endoftext|>' ($(wc -c < "$corpus") bytes)"
"$cca" tokenizer train --vocab 8192 --special '<|endoftext|>' --output "$out/trained_by_swift.json" "$corpus"
python3 scripts/tokenizer_speed.py build "$out" "$corpus" > "$out/files.txt"
echo "$out/trained_by_swift.json" >> "$out/files.txt"
while read -r file; do
    name=$(basename "$file" .json)
    echo "== $name"
    echo -n "swift:  "; "$cca" tokenizer encode --timing --tokenizer "$file" "$corpus" 2>&1 > "$out/$name.swift.ids"
    echo -n "python: "; python3 scripts/tokenizer_speed.py time "$file" "$corpus" 2>&1 > "$out/$name.python.ids"
    cmp -s "$out/$name.swift.ids" "$out/$name.python.ids" && echo "ids: identical" || echo "ids: DIFFERENT"
done < "$out/files.txt"
