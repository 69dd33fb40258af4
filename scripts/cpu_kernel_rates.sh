#!/usr/bin/env bash
# Single-thread rates of the C kernels (Sources/CCAKernels) on the layer shapes of `cca bench cpu`, against
# PyTorch with one thread on the same operations, alternating, in thread CPU time (less sensitive to other
# processes on the machine than wall time):
#
#     scripts/cpu_kernel_rates.sh [ROUNDS] [OTHER_KERNELS_DIR]     (default 3 rounds)
#
# Rows: x · Wᵀ for the MHA and CCA projections (2048 × N × K), and causal attention S = 2048, d = 128 with
# 2 and 8 heads through cca_attention_block in 64-row blocks; GFLOP/s, best of 5 (attention 3).
# OTHER_KERNELS_DIR (e.g. another checkout's Sources/CCAKernels) is timed too, as "other", in each round.
# Environment: PYTHON (a python3 with torch; default python3), VARIANT (avx512, avx2 or portable; default avx512).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
other="${2:-}"
python="${PYTHON:-python3}"
variant="${VARIANT:-avx512}"
case "$variant" in
    avx512) variant_id=CCAKernelVariantAVX512 ;; avx2) variant_id=CCAKernelVariantAVX2 ;; portable) variant_id=CCAKernelVariantPortable ;;
    *) echo "VARIANT must be avx512, avx2 or portable, got $variant"; exit 1 ;;
esac
"$python" -c "import torch" 2>/dev/null || { echo "$python has no torch: set PYTHON"; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/cca-rates.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat > "$work/rates.c" <<EOF
#include "CCAKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *filled(long n) {
    float *p = aligned_alloc(64, (size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) p[i] = (float)(rand() % 1000) / 1000 - 0.5f;
    return p;
}
typedef struct { long m, n, k; float *a, *b, *c; } product;
typedef struct { long length, heads, d; float *q, *k, *v, *out, *lse, *workspace; } attention;
static void run_product(void *p) {
    product *x = p;
    cca_sgemm($variant_id, 0, 1, x->m, x->n, x->k, 1, x->a, x->k, x->b, x->k, 0, x->c, x->n);
}
static void run_attention(void *p) {
    attention *x = p;
    const long width = x->heads * x->d;
    for (long h = 0; h < x->heads; h++) {
        for (long first = 0; first < x->length; first += 64) {
            const long rows = x->length - first < 64 ? x->length - first : 64;
            cca_attention_block($variant_id, x->q + first * width + h * x->d, width, x->k + h * x->d, width, x->v + h * x->d,
                                width, x->out + first * width + h * x->d, width, x->lse + first * x->heads + h, x->heads, rows,
                                x->length, x->d, x->d, 0.088f, first + 1, 1, x->workspace);
        }
    }
}
static double best(int repeats, void (*run)(void *), void *argument) {
    double fastest = 1e30;
    for (int r = 0; r < repeats; r++) {
        const double start = now();
        run(argument);
        const double elapsed = now() - start;
        fastest = elapsed < fastest ? elapsed : fastest;
    }
    return fastest;
}
int main(void) {
    const long length = 2048, hidden = 1024, shapes[][2] = {{1024, 1024}, {512, 1024}, {256, 1024}, {1024, 256}};
    float *x = filled(length * hidden), *w = filled(hidden * hidden), *y = filled(length * hidden);
    for (int s = 0; s < 4; s++) {
        product p = {length, shapes[s][0], shapes[s][1], x, w, y};
        printf("linear %ldx%ldx%ld %.1f\n", length, p.n, p.k, 2.0 * length * p.n * p.k / best(5, run_product, &p) / 1e9);
    }
    for (long heads = 2; heads <= 8; heads *= 4) {
        attention a = {length, heads, 128, x, y, w, filled(length * heads * 128), filled(length * heads),
                       filled(cca_attention_workspace_count($variant_id, 64, 128, 128))};
        printf("attention H=%ld %.1f\n", heads, 4.0 * length * length * heads * 128 / 2 / best(3, run_attention, &a) / 1e9);
    }
    return 0;
}
EOF
cat > "$work/rates.py" <<'EOF'
import time, torch, torch.nn.functional as F
torch.set_num_threads(1)
def best(run, repeats):
    run()
    fastest = 1e30
    for _ in range(repeats):
        start = time.thread_time(); run(); fastest = min(fastest, time.thread_time() - start)
    return fastest
S = 2048
with torch.no_grad():
    for n, k in [(1024, 1024), (512, 1024), (256, 1024), (1024, 256)]:
        a, w = torch.randn(S, k), torch.randn(n, k)
        print(f"linear {S}x{n}x{k} {2 * S * n * k / best(lambda: F.linear(a, w), 5) / 1e9:.1f}")
    for heads in (2, 8):
        q, k, v = (torch.randn(1, heads, S, 128) for _ in range(3))
        rate = 4 * S * S * heads * 128 / 2 / best(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), 3) / 1e9
        print(f"attention H={heads} {rate:.1f}")
EOF
build() { clang -O2 -w -I"$1/include" -I"$1" "$work/rates.c" "$1"/*.c -lm -o "$2"; }
build "$root/Sources/CCAKernels" "$work/ours"
[ -z "$other" ] || build "$other" "$work/other"
results="$work/results"
for round in $(seq "$rounds"); do
    echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "$other" ] || "$work/other" | sed 's/^/other /' >> "$results"
    "$work/ours" | sed 's/^/ours /' >> "$results"
    "$python" "$work/rates.py" | sed 's/^/torch /' >> "$results"
done
echo
printf '%-24s %-8s %s\n' operation run "GFLOP/s per round"
awk '{ key = $2 " " $3; if (!(key in seen)) { seen[key] = 1; order[++n] = key } rates[key, $1] = rates[key, $1] (rates[key, $1] == "" ? "" : " / ") $4; runs[$1] = 1 }
     END { for (i = 1; i <= n; i++) for (r in runs) if ((order[i], r) in rates) printf "%-24s %-8s %s\n", order[i], r, rates[order[i], r] }' "$results"
