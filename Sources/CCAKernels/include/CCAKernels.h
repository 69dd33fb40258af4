// The CPU kernels of swift-cca: matrix product, exponential and softmax rows, each compiled for several
// instruction sets and chosen at run time by what the CPU supports.
//
// Every function takes the variant to run; pass one for which `cca_kernel_variant_supported` is true.
// A variant built for another architecture (AVX-512 on aarch64, NEON on x86-64) runs the portable code.
#ifndef CCA_KERNELS_H
#define CCA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

#if __has_attribute(enum_extensibility)
#define CCA_CLOSED_ENUM __attribute__((enum_extensibility(closed)))
#else
#define CCA_CLOSED_ENUM
#endif

/// An instruction-set variant of the kernels.
typedef enum CCA_CLOSED_ENUM CCAKernelVariant {
    /// Plain C at the architecture's baseline (SSE2 on x86-64, NEON on aarch64): every CPU runs it.
    CCAKernelVariantPortable = 0,
    /// x86-64 with AVX2 and FMA (Intel since 2013, AMD since 2015): 256-bit registers.
    CCAKernelVariantAVX2 = 1,
    /// x86-64 with AVX-512F: 512-bit registers, twice AVX2's multiply-adds per cycle on most such CPUs.
    CCAKernelVariantAVX512 = 2,
    /// aarch64 with Advanced SIMD (every aarch64 Linux CPU), with a register tile sized for its 32 registers.
    CCAKernelVariantNEON = 3,
} CCAKernelVariant;

/// Whether this CPU and its operating system run `variant`.
bool cca_kernel_variant_supported(CCAKernelVariant variant);

/// The fastest variant this CPU runs.
CCAKernelVariant cca_kernel_best_variant(void);

/// Rows of A in one register tile of `variant`'s matrix kernel; blocks of C that are multiples of it
/// waste no work.
int cca_sgemm_tile_rows(CCAKernelVariant variant);

/// Columns of B in one register tile of `variant`'s matrix kernel.
int cca_sgemm_tile_columns(CCAKernelVariant variant);

/// `C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C` on the calling thread, row-major with row strides
/// `lda`, `ldb`, `ldc` as BLAS `sgemm` defines them; `op` transposes when its flag is set. With `beta == 0`,
/// C is only written (NaNs there do not propagate). Safe to call from several threads on disjoint C.
void cca_sgemm(CCAKernelVariant variant, bool transposeA, bool transposeB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
               float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c,
               ptrdiff_t ldc);

/// Replaces each of the `count` values by its exponential: relative error below 2e-7 on [-87.3, 88.3],
/// 0 below -87.3, +inf from 88.38 on (a little before float's true overflow at 88.72), NaN stays NaN.
void cca_exp(CCAKernelVariant variant, float *values, ptrdiff_t count);

/// The largest of `count` values (-inf when `count` is 0; NaNs are skipped).
float cca_max(CCAKernelVariant variant, const float *values, ptrdiff_t count);

/// Replaces each value `x` by `exp(x - shift)` and returns the sum of the results.
float cca_exp_shifted_sum(CCAKernelVariant variant, float *values, ptrdiff_t count, float shift);

/// Multiplies each of the `count` values by `factor`.
void cca_scale(CCAKernelVariant variant, float *values, ptrdiff_t count, float factor);

/// Runs `iterations` steps of independent fused multiply-add chains in `variant`'s widest registers and
/// returns a value that depends on all of them; each step is `cca_fma_chain_flops(variant)`
/// floating-point operations. Timing it gives the FMA peak that the matrix kernel can approach.
float cca_fma_chains(CCAKernelVariant variant, long iterations);

/// Floating-point operations of one step of `cca_fma_chains`.
long cca_fma_chain_flops(CCAKernelVariant variant);

/// Softmax of `rows` rows in place: row `r` (at `values + r·rowStride`) takes the softmax of its first
/// `visible + r·visibleStep` entries and zeros up to `width` (a causal staircase when `visibleStep` is 1).
/// A row whose visible entries are all -inf, or that has none, becomes all zeros.
void cca_softmax_rows(CCAKernelVariant variant, float *values, ptrdiff_t rows, ptrdiff_t rowStride, ptrdiff_t width,
                      ptrdiff_t visible, ptrdiff_t visibleStep);

/// Causal attention of one block of `rows` query rows and one head, fused: for each tile of keys the scaled
/// scores `scoreScale · q·kᵀ`, the causal mask, an online softmax and the product with v, so that no more
/// than a tile of scores exists. Row `r` sees keys `0 ..< visible + r·visibleStep` (clamped to `keys`); q row
/// `r` is at `q + r·qStride` (`keyDim` values), key/value `s` at `k + s·kStride` / `v + s·vStride`. Writes
/// out row `r` (`valueDim` values at `out + r·outStride`) and its log-sum-exp at `lse + r·lseStride`; a row
/// that sees no key (or only -inf scores) gets zeros and -inf, a NaN or +inf score makes the row NaN.
/// `workspace` holds `cca_attention_workspace_count(variant, rows, keyDim, valueDim)` floats.
void cca_attention_block(CCAKernelVariant variant, const float *q, ptrdiff_t qStride, const float *k, ptrdiff_t kStride,
                         const float *v, ptrdiff_t vStride, float *out, ptrdiff_t outStride, float *lse,
                         ptrdiff_t lseStride, ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t keyDim, ptrdiff_t valueDim,
                         float scoreScale, ptrdiff_t visible, ptrdiff_t visibleStep, float *workspace);

/// Floats of workspace `cca_attention_block` needs for blocks of up to `rows` rows.
ptrdiff_t cca_attention_workspace_count(CCAKernelVariant variant, ptrdiff_t rows, ptrdiff_t keyDim, ptrdiff_t valueDim);

/// Returns `*counter` and adds 1 to it, atomically: threads taking tasks from one counter each get another index.
ptrdiff_t cca_task_counter_next(ptrdiff_t *counter);

#endif
