// Internal to CCAKernels: the matrix product's inline code, GotoBLAS-style blocking (panels of A and B
// packed contiguously, a depth block that keeps a B panel in L1 and the A block in L2) around a register
// tile of fused multiply-adds. Included by every file whose kernels issue products (MatrixProduct.c,
// Attention.c), each inlining it into its functions per instruction set with that set's tile.
#ifndef CCA_KERNELS_PACKED_PRODUCT_H
#define CCA_KERNELS_PACKED_PRODUCT_H

#include "Vector.h"

#include <stdbool.h>

// Register tiles (rows of A × vectors of 16 columns of B), sized so that the accumulators, the B
// vectors and one broadcast fit the register file: AVX-512 28 + 2 of 32 zmm, AVX2 12 + 2 of 16 ymm,
// NEON 24 + 4 of 32 q-registers; the portable tile suits SSE2's 16 registers. On AVX-512, 14 rows
// (28 accumulators) ran large products 5-15% faster than 8 once C's tile is prefetched (single thread,
// 2048 × 1024 × 1024: 131-142 against 108-131 GFLOP/s); attention keeps 8 rows
// (`avx512_attention_rows` in Attention.c), which divide its 64-row blocks.
enum {
    portable_rows = 4, portable_vectors = 1,
    avx2_rows = 6, avx2_vectors = 1,
    avx512_rows = 14, avx512_vectors = 2,
    neon_rows = 6, neon_vectors = 1,
    max_rows = 14, max_vectors = 2,
};

// Depth of one packed block, and the A rows (in tiles) and B columns packed at once.
enum { depth_block = 256, row_block_tiles = 8, column_block = 1024 };

// C[height, width] += alpha · A·B (or = with `accumulate` false) over `depth` steps: B packed as `vectors` × 16
// values per step, zero-padded past the matrix edge; A's value of row r at step p at `a + r·aRow + p·aStep`,
// so A may be a packed panel (aRow 1, aStep `rows`) or read in place (a block's keys, a transposed score tile).
CCA_INLINE void multiply_tile(const int rows, const int vectors, ptrdiff_t depth, const float *restrict a,
                              ptrdiff_t aRow, ptrdiff_t aStep, const float *restrict b, float *c, ptrdiff_t ldc,
                              float alpha, bool accumulate, ptrdiff_t height, ptrdiff_t width) {
    cca_vector sums[max_rows][max_vectors];
    // C's tile is read once the sums are done; fetching it now hides that miss behind the depth loop (rows
    // past an edge tile's height are fetched too: a prefetch never faults).
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) __builtin_prefetch(c + r * ldc + v * cca_lanes, 1, 3);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) sums[r][v] = cca_splat(0);
    }
    for (ptrdiff_t p = 0; p < depth; p++) {
        cca_vector bs[max_vectors];
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) bs[v] = cca_load(b + v * cca_lanes);
#pragma clang loop unroll(full)
        for (int r = 0; r < rows; r++) {
            const cca_vector ar = cca_splat(a[r * aRow]);
#pragma clang loop unroll(full)
            for (int v = 0; v < vectors; v++) sums[r][v] = cca_multiply_add(ar, bs[v], sums[r][v]);
        }
        a += aStep;
        b += vectors * cca_lanes;
    }
    const int columns = vectors * cca_lanes;
    const cca_vector scale = cca_splat(alpha);
    if (height == rows && width == columns) {
#pragma clang loop unroll(full)
        for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
            for (int v = 0; v < vectors; v++) {
                float *out = c + r * ldc + v * cca_lanes;
                cca_store(out, accumulate ? cca_multiply_add(scale, sums[r][v], cca_load(out)) : scale * sums[r][v]);
            }
        }
        return;
    }
    // An edge tile: spill with constant indices (so the sums stay in registers above), then add the part inside C.
    float tile[max_rows][max_vectors * cca_lanes];
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) cca_store(&tile[r][v * cca_lanes], sums[r][v]);
    }
    for (ptrdiff_t r = 0; r < height; r++) {
        for (ptrdiff_t j = 0; j < width; j++) c[r * ldc + j] = alpha * tile[r][j] + (accumulate ? c[r * ldc + j] : 0);
    }
}

// Transposes the 16×16 block whose row i is vector i: each level swaps one bit of the row index with
// the same bit of the column index, exchanging the off-diagonal h×h blocks of each 2h×2h block.
CCA_INLINE void transpose16(cca_vector v[cca_lanes]) {
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        const cca_vector a = v[i], b = v[i + 8];
        v[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        v[i + 8] = __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += (i & 3) == 3 ? 5 : 1) {
        const cca_vector a = v[i], b = v[i + 4];
        v[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
        v[i + 4] = __builtin_shufflevector(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += (i & 1) ? 3 : 1) {
        const cca_vector a = v[i], b = v[i + 2];
        v[i] = __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        v[i + 2] = __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += 2) {
        const cca_vector a = v[i], b = v[i + 1];
        v[i] = __builtin_shufflevector(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        v[i + 1] = __builtin_shufflevector(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
}

// Transposes `count` (≤ 16) rows of `source` (row i at `source + i·stride`), steps p ..< depth of each,
// into `out`: step p's 16 values (rows past `count` as zeros) at `out + p·outStride`. This packs a panel
// whose source runs along depth. Blocks of 16 steps go through `transpose16`; a 16-lane store may spill
// up to 15 floats past the last step's values, which the caller's buffer has room for.
CCA_INLINE void pack_transposing(const float *source, ptrdiff_t stride, ptrdiff_t count, ptrdiff_t depth,
                                 float *restrict out, ptrdiff_t outStride) {
    ptrdiff_t p = 0;
    for (; p + cca_lanes <= depth; p += cca_lanes) {
        cca_vector block[cca_lanes];
#pragma clang loop unroll(full)
        for (int i = 0; i < cca_lanes; i++) block[i] = i < count ? cca_load(source + i * stride + p) : cca_splat(0);
        transpose16(block);
#pragma clang loop unroll(full)
        for (int q = 0; q < cca_lanes; q++) cca_store(out + (p + q) * outStride, block[q]);
    }
    for (; p < depth; p++) {
        for (ptrdiff_t i = 0; i < cca_lanes; i++) out[p * outStride + i] = i < count ? source[i * stride + p] : 0;
    }
}

// Writes `width` values per step of depth, the first `count` from `source + p·stride` and zeros after,
// to `out`: the packing of a panel whose source runs along the panel's width.
CCA_INLINE void pack_copying(const int width, const float *source, ptrdiff_t stride, ptrdiff_t count,
                             ptrdiff_t depth, float *restrict out) {
    for (ptrdiff_t p = 0; p < depth; p++) {
        if (count == width) {
            memcpy(out + p * width, source + p * stride, (size_t)width * sizeof(float));
        } else {
            for (int j = 0; j < width; j++) out[p * width + j] = j < count ? source[p * stride + j] : 0;
        }
    }
}

// The first `count` rows of A (or columns of B) as panels of `size`: for each step of depth, `size`
// consecutive values, zero past `count`. `alongDepth` says the matrix as stored runs along depth (A not
// transposed, B transposed), so each panel is transposed on the way; otherwise it is copied.
CCA_INLINE void pack_panels(const int size, bool alongDepth, const float *matrix, ptrdiff_t stride, ptrdiff_t count,
                            ptrdiff_t depth, float *restrict out) {
    for (ptrdiff_t first = 0; first < count; first += size) {
        const ptrdiff_t extent = count - first < size ? count - first : size;
        if (alongDepth) {
            for (int part = 0; part < size; part += cca_lanes) {
                const ptrdiff_t rows = extent - part < 0 ? 0 : extent - part < cca_lanes ? extent - part : cca_lanes;
                pack_transposing(matrix + (first + part) * stride, stride, rows, depth, out + part, size);
            }
        } else {
            pack_copying(size, matrix + first, stride, extent, depth, out);
        }
        out += size * depth;
    }
}

// C = beta · C, where beta 0 writes zeros whatever C held.
CCA_INLINE void scale_c(ptrdiff_t m, ptrdiff_t n, float beta, float *c, ptrdiff_t ldc) {
    if (beta == 1) return;
    for (ptrdiff_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0) {
            memset(row, 0, (size_t)n * sizeof(float));
        } else {
            for (ptrdiff_t j = 0; j < n; j++) row[j] *= beta;
        }
    }
}

CCA_INLINE ptrdiff_t round_up(ptrdiff_t value, ptrdiff_t multiple) { return (value + multiple - 1) / multiple * multiple; }

CCA_INLINE ptrdiff_t min_size(ptrdiff_t x, ptrdiff_t y) { return x < y ? x : y; }

// Floats of packing space `sgemm_packed` needs for a product of this shape with this tile.
CCA_INLINE ptrdiff_t sgemm_workspace_count(const int rows, const int vectors, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k) {
    const ptrdiff_t depth = min_size(k, depth_block);
    const ptrdiff_t packed_a_count = round_up(min_size(m, rows * row_block_tiles), rows) * depth;
    const ptrdiff_t packed_b_count = round_up(min_size(n, column_block), vectors * cca_lanes) * depth;
    // Room for the 16-lane stores of pack_transposing past the end of each panel set.
    return round_up(packed_a_count + packed_b_count + 2 * cca_lanes, 16);
}

// The product in `workspace` (at least `sgemm_workspace_count` floats), so that a caller issuing many
// products (the fused attention) packs into memory it allocated once.
CCA_INLINE void sgemm_packed(const int rows, const int vectors, bool transposeA, bool transposeB, ptrdiff_t m,
                             ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                             ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc, float *workspace) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) return scale_c(m, n, beta, c, ldc);
    // With beta 0 the first depth block stores its tiles over C (no pass that zeros C first, no reading it).
    if (beta != 0) scale_c(m, n, beta, c, ldc);
    const int columns = vectors * cca_lanes;
    const ptrdiff_t row_block = rows * row_block_tiles;
    const ptrdiff_t depth = min_size(k, depth_block);
    float *packed_a = workspace;
    float *packed_b = packed_a + round_up(min_size(m, row_block), rows) * depth + cca_lanes;
    for (ptrdiff_t jc = 0; jc < n; jc += column_block) {
        const ptrdiff_t nc = min_size(column_block, n - jc);
        for (ptrdiff_t pc = 0; pc < k; pc += depth_block) {
            const ptrdiff_t kc = min_size(depth_block, k - pc);
            pack_panels(columns, transposeB, transposeB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, nc, kc, packed_b);
            for (ptrdiff_t ic = 0; ic < m; ic += row_block) {
                const ptrdiff_t mc = min_size(row_block, m - ic);
                pack_panels(rows, !transposeA, transposeA ? a + pc * lda + ic : a + ic * lda + pc, lda, mc, kc, packed_a);
                for (ptrdiff_t jr = 0; jr < nc; jr += columns) {
                    for (ptrdiff_t ir = 0; ir < mc; ir += rows) {
                        multiply_tile(rows, vectors, kc, packed_a + ir * kc, 1, rows, packed_b + jr * kc,
                                      c + (ic + ir) * ldc + jc + jr, ldc, alpha, pc > 0 || beta != 0, min_size(rows, mc - ir),
                                      min_size(columns, nc - jr));
                    }
                }
            }
        }
    }
}

#endif
