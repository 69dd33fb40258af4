#!/usr/bin/env bash
# `cca bench cpu`'s two layers against their PyTorch anchors, measured in the same run, alternately:
#
#     scripts/bench_cpu.sh [ROUNDS]        (default 3)
#
# Environment: CCA (default .build/release/cca), PYTHON (a python3 with torch and transformers; default
# python3), THREADS (PyTorch's thread count; default: the number of cores, as ours uses), BEFORE (another
# cca binary, say main's, to alternate with: run with no BLAS each round, reported as "before").
# Each round runs BEFORE when set, our layers with no BLAS (CCA_BLAS=none, the default of a new user), with
# OpenBLAS when libopenblas.so.0 loads, then scripts/cpu_anchors.py; each round prints the machine's load
# average. It ends with the median of each over the rounds and the ratios PyTorch / ours (above 1: ours is faster).
set -euo pipefail
# (tee -a: a plain tee would reopen stderr truncated when both outputs go to one file.)
cd "$(dirname "$0")/.."
rounds="${1:-3}"
cca="${CCA:-.build/release/cca}"
python="${PYTHON:-python3}"
threads="${THREADS:-$(nproc)}"
before="${BEFORE:-}"
[ -x "$cca" ] || { echo "no $cca: build it with 'swift build -c release' or set CCA"; exit 1; }
[ -z "$before" ] || [ -x "$before" ] || { echo "BEFORE=$before is not an executable cca binary"; exit 1; }
"$python" -c "import torch, transformers.models.zaya" 2>/dev/null ||
    { echo "$python has no torch or transformers with ZAYA: install them (see BENCHMARKS.md) or set PYTHON"; exit 1; }
configurations=(none)
if "$python" -c "import ctypes; ctypes.CDLL('libopenblas.so.0')" 2>/dev/null; then configurations+=(libopenblas.so.0); fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
layers() { # BINARY BLAS LABEL: the layer times of one run, as "LABEL LAYER MS" lines in $results
    CCA_BLAS="$2" "$1" bench cpu --layers-only --repeats 5 | tee -a /dev/stderr |
        awk -v label="$3" '/^(MHA|CCA) \(/ { for (i = 1; i <= NF; i++) if ($i == "ms") print label, $1, $(i - 1) }' >> "$results"
}
for round in $(seq "$rounds"); do
    echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "$before" ] || layers "$before" none before
    for blas in "${configurations[@]}"; do layers "$cca" "$blas" "ours-$blas"; done
    "$python" scripts/cpu_anchors.py --threads "$threads" | tee -a /dev/stderr |
        awk '/^anchor / { print "torch", ($2 == "torch-mha" ? "MHA" : "CCA"), $3 }' >> "$results"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
echo
printf '%-6s %-22s %10s %10s\n' layer run "median ms" "torch/ours"
for layer in MHA CCA; do
    anchor="$(awk -v l="$layer" '$1 == "torch" && $2 == l { print $3 }' "$results" | median)"
    printf '%-6s %-22s %10s %10s\n' "$layer" "PyTorch" "$anchor" "1.00x"
    for label in ${before:+before} "${configurations[@]/#/ours-}"; do
        ours="$(awk -v l="$layer" -v b="$label" '$1 == b && $2 == l { print $3 }' "$results" | median)"
        printf '%-6s %-22s %10s %10s\n' "$layer" "$label" "$ours" "$(awk -v a="$anchor" -v o="$ours" 'BEGIN { printf "%.2fx", a / o }')"
    done
done
