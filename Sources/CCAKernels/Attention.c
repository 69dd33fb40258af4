// Fused causal attention forward for one block of query rows and one head: the keys are taken a tile at a
// time (score tile, mask, online softmax, P·V), so the scores never exceed a tile and nothing is
// allocated per block. Compiled per instruction set with that set's matrix tile.
//
// The score tile is computed transposed, Sᵀ = K·Qᵀ (keys down, query rows across), so that:
// - K is read in place as the product's A operand (no packing per block) and Q is packed once per block;
// - the softmax runs down the columns, 16 query rows per vector (maximum, exponential and sum vertical);
// - P·V reads P straight from Sᵀ as its A operand (row r at step p is Sᵀ[p][r]): P is never packed.
#include "CCAKernels.h"
#include "ExponentialVector.h"
#include "PackedProduct.h"

#include <math.h>

// Keys per tile: a 64-row block's scores (64 KiB) stay in L2 next to the packed panels.
enum { key_tile = 256 };

// Rows of A in the attention's register tiles on AVX-512: 8 divide the 64-row blocks (the product's
// 14 would compute 70 rows for them) and the 256-key tiles.
enum { avx512_attention_rows = 8 };

CCA_INLINE ptrdiff_t clamp_size(ptrdiff_t x, ptrdiff_t lo, ptrdiff_t hi) { return x < lo ? lo : x > hi ? hi : x; }

// The query rows of a block padded to whole B panels: the width of the transposed score tile.
CCA_INLINE ptrdiff_t score_width(const int vectors, ptrdiff_t rows) { return round_up(rows, vectors * cca_lanes); }

// Workspace layout: Sᵀ [key tile rounded to A tiles, score width], three per-row vectors (running maximum
// and sum, the tile's correction), Q packed as B panels, one tile of V packed as B panels, and an A tile
// of the keys past the last whole group of a tile (packed, zero rows after), each with room for the
// 16-lane stores of pack_transposing.
CCA_INLINE ptrdiff_t attention_workspace_count(const int tile_rows, const int vectors, ptrdiff_t rows, ptrdiff_t keyDim,
                                               ptrdiff_t valueDim) {
    const ptrdiff_t width = score_width(vectors, rows), columns = vectors * cca_lanes;
    return round_up(round_up(key_tile, tile_rows) * width, 16) + 3 * width + round_up(width * keyDim + cca_lanes, 16) +
           round_up(round_up(valueDim, columns) * key_tile + cca_lanes, 16) + round_up(tile_rows * keyDim + 2 * cca_lanes, 16);
}

CCA_INLINE cca_vector select_vector(cca_int_vector mask, cca_vector yes, cca_vector no) {
    return (cca_vector)(((cca_int_vector)yes & mask) | ((cca_int_vector)no & ~mask));
}

// The online softmax of one transposed score tile (`count` keys down, `width` query rows across, row
// stride `width`): each column's visible entries become exp(s − m) with m its running maximum, the rest
// 0; `largest` and `sums` carry each column's maximum and sum from tile to tile, and `corrections`
// receives the factor exp(m_before − m_after) that the column's earlier output must take (1 where the
// column has seen only -inf, whose output is still 0). `visibleCount(r)` as in `cca_attention_block`,
// relative to the tile's first key.
CCA_INLINE void softmax_columns(float *scores, ptrdiff_t count, ptrdiff_t width, ptrdiff_t visible,
                                ptrdiff_t visibleStep, float *largest, float *sums, float *corrections) {
    const float infinity = __builtin_inff();
    for (ptrdiff_t first = 0; first < width; first += cca_lanes) {
        int counts[cca_lanes];
        int extent = 0;
        for (int lane = 0; lane < cca_lanes; lane++) {
            counts[lane] = (int)clamp_size(visible + (first + lane) * visibleStep, 0, count);
            extent = counts[lane] > extent ? counts[lane] : extent;
        }
        cca_int_vector visibleCounts;
        memcpy(&visibleCounts, counts, sizeof visibleCounts);
        float *column = scores + first;
        cca_vector top = cca_splat(-infinity);
        for (int p = 0; p < extent; p++) {
            const cca_int_vector seen = visibleCounts > p;
            top = __builtin_elementwise_max(top, select_vector(seen, cca_load(column + p * width), cca_splat(-infinity)));
        }
        const cca_vector before = cca_load(largest + first);
        const cca_vector after = __builtin_elementwise_max(before, top);
        const cca_int_vector nothing = after == -infinity;
        // A column that has seen only -inf keeps shift 0, so a NaN among its scores still reaches its sum.
        const cca_vector shift = select_vector(nothing, cca_splat(0), after);
        cca_vector total = cca_splat(0);
        for (int p = 0; p < extent; p++) {
            const cca_int_vector seen = visibleCounts > p;
            const cca_vector weights = select_vector(seen, exp_vector(cca_load(column + p * width) - shift), cca_splat(0));
            cca_store(column + p * width, weights);
            total += weights;
        }
        for (ptrdiff_t p = extent; p < count; p++) cca_store(column + p * width, cca_splat(0));
        const cca_vector correction = select_vector(nothing, cca_splat(1), exp_vector(before - after));
        cca_store(corrections + first, correction);
        cca_store(sums + first, cca_load(sums + first) * correction + total);
        cca_store(largest + first, after);
    }
}

CCA_INLINE void attention_block(const int tile_rows, const int vectors, const float *q, ptrdiff_t qStride,
                                const float *k, ptrdiff_t kStride, const float *v, ptrdiff_t vStride, float *out,
                                ptrdiff_t outStride, float *lse, ptrdiff_t lseStride, ptrdiff_t rows, ptrdiff_t keys,
                                ptrdiff_t keyDim, ptrdiff_t valueDim, float scoreScale, ptrdiff_t visible,
                                ptrdiff_t visibleStep, float *workspace) {
    if (rows <= 0) return;
    const ptrdiff_t width = score_width(vectors, rows), columns = vectors * cca_lanes;
    float *scores = workspace;
    float *largest = scores + round_up(round_up(key_tile, tile_rows) * width, 16), *sums = largest + width;
    float *corrections = sums + width, *packedQ = corrections + width;
    float *packedV = packedQ + round_up(width * keyDim + cca_lanes, 16);
    float *edgeKeys = packedV + round_up(round_up(valueDim, columns) * key_tile + cca_lanes, 16);
    const float infinity = __builtin_inff();
    for (ptrdiff_t r = 0; r < width; r++) {
        largest[r] = -infinity;
        sums[r] = 0;
    }
    for (ptrdiff_t r = 0; r < rows; r++) memset(out + r * outStride, 0, (size_t)valueDim * sizeof(float));
    // Qᵀ as the B operand of the score product, all of keyDim deep: packed once for every key tile.
    pack_panels(columns, true, q, qStride, rows, keyDim, packedQ);
    // The keys some row of the block sees: up to the last row's when the staircase climbs, else the first's.
    const ptrdiff_t seen = clamp_size(visible + (visibleStep > 0 ? (rows - 1) * visibleStep : 0), 0, keys);
    for (ptrdiff_t first = 0; first < seen; first += key_tile) {
        const ptrdiff_t count = min_size(key_tile, seen - first);
        const float *tileKeys = k + first * kStride;
        for (ptrdiff_t group = 0; group < count; group += tile_rows) {
            // Whole groups of keys are read in place; the last partial one through a zero-padded copy.
            const bool whole = group + tile_rows <= count;
            if (!whole) pack_panels(tile_rows, true, tileKeys + group * kStride, kStride, count - group, keyDim, edgeKeys);
            for (ptrdiff_t column = 0; column < width; column += columns) {
                float *c = scores + group * width + column;
                const float *b = packedQ + column * keyDim;
                if (whole) {
                    multiply_tile(tile_rows, vectors, keyDim, tileKeys + group * kStride, kStride, 1, b, c, width,
                                  scoreScale, false, tile_rows, columns);
                } else {
                    multiply_tile(tile_rows, vectors, keyDim, edgeKeys, 1, tile_rows, b, c, width, scoreScale, false,
                                  tile_rows, columns);
                }
            }
        }
        softmax_columns(scores, count, width, visible - first, visibleStep, largest, sums, corrections);
        for (ptrdiff_t r = 0; r < rows; r++) {
            if (corrections[r] != 1) scale(out + r * outStride, valueDim, corrections[r]);
        }
        pack_panels(columns, false, v + first * vStride, vStride, valueDim, count, packedV);
        for (ptrdiff_t column = 0; column < valueDim; column += columns) {
            for (ptrdiff_t row = 0; row < rows; row += tile_rows) {
                multiply_tile(tile_rows, vectors, count, scores + row, 1, width, packedV + column * count,
                              out + row * outStride + column, outStride, 1, true, min_size(tile_rows, rows - row),
                              min_size(columns, valueDim - column));
            }
        }
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
    attention_block(avx512_attention_rows, avx512_vectors, ATTENTION_ARGUMENTS);
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
    case CCAKernelVariantAVX512: return attention_workspace_count(avx512_attention_rows, avx512_vectors, rows, keyDim, valueDim);
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return attention_workspace_count(neon_rows, neon_vectors, rows, keyDim, valueDim);
#endif
    default: return attention_workspace_count(portable_rows, portable_vectors, rows, keyDim, valueDim);
    }
}
