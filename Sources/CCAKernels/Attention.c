// Fused causal attention forward for one block of query rows and one head: the keys are taken a tile at a
// time (score tile, mask, online softmax, P·V), so the scores never exceed a tile and nothing is
// allocated per block. Compiled per instruction set with that set's matrix tile.
#include "CCAKernels.h"
#include "ExponentialVector.h"
#include "PackedProduct.h"

#include <math.h>

// Keys per tile: a 64-row block's scores (64 KiB) stay in L2 next to the packed panels.
enum { key_tile = 256 };

CCA_INLINE ptrdiff_t clamp_size(ptrdiff_t x, ptrdiff_t lo, ptrdiff_t hi) { return x < lo ? lo : x > hi ? hi : x; }

// Workspace layout: scores [rows, key_tile], four per-row values (running maximum and sum, the tile's sum,
// the correction), then the packing space of the larger of the two products.
CCA_INLINE ptrdiff_t attention_workspace_count(const int tile_rows, const int vectors, ptrdiff_t rows, ptrdiff_t keyDim,
                                               ptrdiff_t valueDim) {
    const ptrdiff_t scoreProduct = sgemm_workspace_count(tile_rows, vectors, rows, key_tile, keyDim);
    const ptrdiff_t valueProduct = sgemm_workspace_count(tile_rows, vectors, rows, valueDim, key_tile);
    return round_up(rows * key_tile, 16) + 4 * round_up(rows, 16) + (scoreProduct > valueProduct ? scoreProduct : valueProduct);
}

CCA_INLINE bool has_nan(const float *values, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) {
        if (values[i] != values[i]) return true;
    }
    return false;
}

CCA_INLINE void attention_block(const int tile_rows, const int vectors, const float *q, ptrdiff_t qStride,
                                const float *k, ptrdiff_t kStride, const float *v, ptrdiff_t vStride, float *out,
                                ptrdiff_t outStride, float *lse, ptrdiff_t lseStride, ptrdiff_t rows, ptrdiff_t keys,
                                ptrdiff_t keyDim, ptrdiff_t valueDim, float scoreScale, ptrdiff_t visible,
                                ptrdiff_t visibleStep, float *workspace) {
    if (rows <= 0) return;
    const ptrdiff_t rowValues = round_up(rows, 16);
    float *scores = workspace;
    float *largest = scores + round_up(rows * key_tile, 16), *sums = largest + rowValues;
    float *tileSums = sums + rowValues, *corrections = tileSums + rowValues, *packing = corrections + rowValues;
    const float infinity = __builtin_inff();
    for (ptrdiff_t r = 0; r < rows; r++) {
        largest[r] = -infinity;
        sums[r] = 0;
        memset(out + r * outStride, 0, (size_t)valueDim * sizeof(float));
    }
    // The keys some row of the block sees: up to the last row's when the staircase climbs, else the first's.
    const ptrdiff_t seen = clamp_size(visible + (visibleStep > 0 ? (rows - 1) * visibleStep : 0), 0, keys);
    for (ptrdiff_t first = 0; first < seen; first += key_tile) {
        const ptrdiff_t width = min_size(key_tile, seen - first);
        sgemm_packed(tile_rows, vectors, false, true, rows, width, keyDim, scoreScale, q, qStride, k + first * kStride,
                     kStride, 0, scores, key_tile, packing);
        for (ptrdiff_t r = 0; r < rows; r++) {
            float *row = scores + r * key_tile;
            const ptrdiff_t count = clamp_size(visible + r * visibleStep - first, 0, width);
            const float top = count > 0 ? maximum(row, count) : -infinity;
            const float next = top > largest[r] ? top : largest[r];
            // The exponent of the factor that brings the row's earlier sum and output to the new maximum
            // (exp(−inf) = 0 at the row's first visible tile); 0 leaves a row that sees nothing yet alone.
            corrections[r] = 0;
            tileSums[r] = 0;
            if (next == -infinity) {
                // The maximum skips NaN: a NaN among -inf scores must still make the row NaN.
                if (has_nan(row, count)) sums[r] = __builtin_nanf("");
            } else {
                corrections[r] = largest[r] - next;
                largest[r] = next;
                tileSums[r] = shifted_exp_sum(row, count, next);
            }
            memset(row + count, 0, (size_t)(width - count) * sizeof(float));
            if (next == -infinity) memset(row, 0, (size_t)count * sizeof(float));
        }
        exponentials(corrections, rows);
        for (ptrdiff_t r = 0; r < rows; r++) {
            sums[r] = sums[r] * corrections[r] + tileSums[r];
            if (corrections[r] != 1) scale(out + r * outStride, valueDim, corrections[r]);
        }
        sgemm_packed(tile_rows, vectors, false, false, rows, valueDim, width, 1, scores, key_tile, v + first * vStride,
                     vStride, 1, out, outStride, packing);
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = out + r * outStride;
        if (sums[r] == 0) {
            memset(row, 0, (size_t)valueDim * sizeof(float));
            lse[r * lseStride] = -infinity;
        } else {
            scale(row, valueDim, 1 / sums[r]);
            lse[r * lseStride] = largest[r] + logf(sums[r]);
        }
    }
}

#define ATTENTION_PARAMETERS                                                                                     \
    const float *q, ptrdiff_t qStride, const float *k, ptrdiff_t kStride, const float *v, ptrdiff_t vStride,     \
        float *out, ptrdiff_t outStride, float *lse, ptrdiff_t lseStride, ptrdiff_t rows, ptrdiff_t keys,          \
        ptrdiff_t keyDim, ptrdiff_t valueDim, float scoreScale, ptrdiff_t visible, ptrdiff_t visibleStep,          \
        float *workspace
#define ATTENTION_ARGUMENTS                                                                                      \
    q, qStride, k, kStride, v, vStride, out, outStride, lse, lseStride, rows, keys, keyDim, valueDim, scoreScale, \
        visible, visibleStep, workspace

static void attention_portable(ATTENTION_PARAMETERS) {
    attention_block(portable_rows, portable_vectors, ATTENTION_ARGUMENTS);
}

#if defined(__x86_64__)
CCA_TARGET_AVX2 static void attention_avx2(ATTENTION_PARAMETERS) { attention_block(avx2_rows, avx2_vectors, ATTENTION_ARGUMENTS); }

CCA_TARGET_AVX512 static void attention_avx512(ATTENTION_PARAMETERS) {
    attention_block(avx512_rows, avx512_vectors, ATTENTION_ARGUMENTS);
}
#endif

#if defined(__aarch64__)
static void attention_neon(ATTENTION_PARAMETERS) { attention_block(neon_rows, neon_vectors, ATTENTION_ARGUMENTS); }
#endif

void cca_attention_block(CCAKernelVariant variant, ATTENTION_PARAMETERS) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return attention_avx2(ATTENTION_ARGUMENTS);
    case CCAKernelVariantAVX512: return attention_avx512(ATTENTION_ARGUMENTS);
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return attention_neon(ATTENTION_ARGUMENTS);
#endif
    default: return attention_portable(ATTENTION_ARGUMENTS);
    }
}

ptrdiff_t cca_attention_workspace_count(CCAKernelVariant variant, ptrdiff_t rows, ptrdiff_t keyDim, ptrdiff_t valueDim) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return attention_workspace_count(avx2_rows, avx2_vectors, rows, keyDim, valueDim);
    case CCAKernelVariantAVX512: return attention_workspace_count(avx512_rows, avx512_vectors, rows, keyDim, valueDim);
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return attention_workspace_count(neon_rows, neon_vectors, rows, keyDim, valueDim);
#endif
    default: return attention_workspace_count(portable_rows, portable_vectors, rows, keyDim, valueDim);
    }
}
