#!/usr/bin/env bash
# Cross-compiles the C kernels (Sources/CCAKernels) for aarch64 Linux and runs their checks there under
# qemu-user: every variant an aarch64 CPU runs (portable and NEON) against float64 loops (matrix product,
# exponential and softmax, fused attention).
#
#     scripts/aarch64-kernel-check.sh
#
# Needs clang (the Swift toolchain's), Debian's qemu-user-static, gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross (for the aarch64 C library to link against); with CI=true it installs them.
# The Swift code is not built for aarch64 here (no aarch64 Swift SDK on this machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kernels="$root/Sources/CCAKernels"
if [ "${CI:-}" = true ] && ! command -v qemu-aarch64-static > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross > /dev/null
fi
for tool in clang qemu-aarch64-static aarch64-linux-gnu-gcc; do
    command -v "$tool" > /dev/null || { echo "aarch64 kernel check NOT RUN: $tool is missing (see the header of $0)"; exit 1; }
done
work="$(mktemp -d "${TMPDIR:-/tmp}/cca-aarch64.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat > "$work/check.c" <<'EOF'
#include "CCAKernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long long state = 1;
static float uniform(void) {  // SplitMix64, in [-1, 1)
    unsigned long long z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (float)((z ^ (z >> 31)) >> 40) / (float)(1 << 23) - 1;
}

// One product with strides, alpha and beta against float64 loops; 1 when it is off or writes past a row.
// With beta 0, C starts as NaN inside the rows (it must be overwritten, never read).
static int check_product(CCAKernelVariant v, bool ta, bool tb, long m, long n, long k, float beta) {
    long lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    float *a = malloc(sizeof(float) * (ta ? k : m) * lda), *b = malloc(sizeof(float) * (tb ? n : k) * ldb);
    float *c = malloc(sizeof(float) * m * ldc), *c0 = malloc(sizeof(float) * m * ldc);
    for (long i = 0; i < (ta ? k : m) * lda; i++) a[i] = uniform();
    for (long i = 0; i < (tb ? n : k) * ldb; i++) b[i] = uniform();
    for (long i = 0; i < m * ldc; i++) c0[i] = c[i] = beta == 0 && i % ldc < n ? NAN : uniform();
    cca_sgemm(v, ta, tb, m, n, k, 0.5f, a, lda, b, ldb, beta, c, ldc);
    double worst = 0, scale = 1e-30;
    int wrote_past = 0;
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < ldc; j++) {
            if (j >= n) { wrote_past |= c[i * ldc + j] != c0[i * ldc + j]; continue; }
            double sum = 0;
            for (long p = 0; p < k; p++) sum += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            double expected = 0.5 * sum + (beta == 0 ? 0 : beta * c0[i * ldc + j]);
            worst = fmax(worst, isnan(c[i * ldc + j]) ? INFINITY : fabs(expected - c[i * ldc + j]));
            scale = fmax(scale, fabs(expected));
        }
    }
    free(a); free(b); free(c); free(c0);
    if (worst / scale < 1e-5 && !wrote_past) return 0;
    printf("FAILED: variant %d product %ldx%ldx%ld tA %d tB %d beta %g: relative error %g%s\n", v, m, n, k, ta, tb, beta,
           worst / scale, wrote_past ? ", wrote past a row" : "");
    return 1;
}

// exp over [-87.3, 88.3] within 2e-7 relative, 0 below, NaN kept; a causal softmax row against float64.
static int check_vector_math(CCAKernelVariant v) {
    int failures = 0;
    float x[1003];
    for (int i = 0; i < 1003; i++) x[i] = -100 + i * 0.1883f;
    float y[1003];
    for (int i = 0; i < 1003; i++) y[i] = x[i];
    cca_exp(v, y, 1003);
    for (int i = 0; i < 1003; i++) {
        double e = exp((double)x[i]);
        int ok = x[i] < -87.3f ? y[i] == 0 : x[i] <= 88.3f ? fabs(y[i] - e) <= 2e-7 * e : isinf(y[i]);
        if (!ok) { printf("FAILED: variant %d exp(%g) = %g\n", v, x[i], y[i]); failures++; }
    }
    float special[1] = {NAN};
    cca_exp(v, special, 1);
    if (!isnan(special[0])) { printf("FAILED: variant %d exp(nan) = %g\n", v, special[0]); failures++; }
    enum { rows = 5, width = 37 };
    float scores[rows * width], original[rows * width];
    for (int i = 0; i < rows * width; i++) original[i] = scores[i] = 4 * uniform();
    cca_softmax_rows(v, scores, rows, width, width, 30, 1);
    for (int r = 0; r < rows; r++) {
        int visible = 30 + r;
        float top = -INFINITY;
        for (int c = 0; c < visible; c++) top = fmaxf(top, original[r * width + c]);
        double total = 0;
        for (int c = 0; c < visible; c++) total += exp((double)(original[r * width + c] - top));
        for (int c = 0; c < width; c++) {
            double expected = c < visible ? exp((double)(original[r * width + c] - top)) / total : 0;
            if (fabs(scores[r * width + c] - expected) > 1e-6 * expected + 1e-30) {
                printf("FAILED: variant %d softmax row %d column %d: %g, expected %g\n", v, r, c, scores[r * width + c], expected);
                failures++;
            }
        }
    }
    return failures;
}

// The fused attention of a causal block (rows 5 ..< 45 of 300 keys, crossing a key tile) against float64.
static int check_attention(CCAKernelVariant v) {
    enum { keys = 300, rows = 40, first = 5, dk = 9, dv = 7 };
    static float q[rows * dk], k[keys * dk], vals[keys * dv], out[rows * dv], lse[rows];
    for (int i = 0; i < rows * dk; i++) q[i] = 2 * uniform();
    for (int i = 0; i < keys * dk; i++) k[i] = uniform();
    for (int i = 0; i < keys * dv; i++) vals[i] = uniform();
    float *workspace = malloc(sizeof(float) * cca_attention_workspace_count(v, rows, dk, dv));
    cca_attention_block(v, q, dk, k, dk, vals, dv, out, dv, lse, 1, rows, keys, dk, dv, 0.5f, first + 1, 1, workspace);
    free(workspace);
    int failures = 0;
    for (int r = 0; r < rows; r++) {
        const int seen = first + r + 1;
        double scores[keys], top = -INFINITY, total = 0;
        for (int s = 0; s < seen; s++) {
            double dot = 0;
            for (int p = 0; p < dk; p++) dot += (double)q[r * dk + p] * k[s * dk + p];
            scores[s] = 0.5 * dot;
            top = fmax(top, scores[s]);
        }
        for (int s = 0; s < seen; s++) total += scores[s] = exp(scores[s] - top);
        if (fabs(lse[r] - (top + log(total))) > 1e-5) { printf("FAILED: variant %d attention lse row %d\n", v, r); failures++; }
        for (int e = 0; e < dv; e++) {
            double expected = 0;
            for (int s = 0; s < seen; s++) expected += scores[s] * vals[s * dv + e] / total;
            if (fabs(out[r * dv + e] - expected) > 1e-5) { printf("FAILED: variant %d attention row %d column %d\n", v, r, e); failures++; }
        }
    }
    return failures;
}

int main(void) {
    const long shapes[][3] = {{1, 1, 1}, {7, 17, 5}, {14, 32, 256}, {13, 33, 257}, {15, 63, 513}, {97, 300, 70}, {200, 64, 600}, {29, 1100, 3}};
    const char *names[] = {"portable", "avx2", "avx512", "neon"};
    int failures = 0, variants = 0;
    for (int v = 0; v < 4; v++) {
        if (!cca_kernel_variant_supported(v)) continue;
        variants++;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            for (int t = 0; t < 8; t++) failures += check_product(v, t & 1, (t >> 1) & 1, shapes[s][0], shapes[s][1], shapes[s][2], t < 4 ? 2.0f : 0.0f);
        }
        failures += check_vector_math(v);
        failures += check_attention(v);
        printf("variant %s (%dx%d tile): checked\n", names[v], cca_sgemm_tile_rows(v), cca_sgemm_tile_columns(v));
    }
    printf("best variant: %s\n", names[cca_kernel_best_variant()]);
    if (variants < 2 || cca_kernel_best_variant() != CCAKernelVariantNEON) { printf("FAILED: expected portable and neon\n"); failures++; }
    printf(failures ? "aarch64 kernel check FAILED (%d problems)\n" : "aarch64 kernel check passed\n", failures);
    return failures != 0;
}
EOF
clang --target=aarch64-linux-gnu -static -O2 -Wall -Wextra -Werror -I"$kernels/include" -I"$kernels" \
    "$work/check.c" "$kernels"/*.c -lm -o "$work/check"
echo "aarch64 kernel check: built $(file -b "$work/check" | cut -d, -f1-2); running under qemu-aarch64-static"
qemu-aarch64-static "$work/check"
