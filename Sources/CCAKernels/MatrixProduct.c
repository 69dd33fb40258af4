// The matrix product of the C API, one function per instruction set with the tile that fits its registers.
#include "CCAKernels.h"
#include "PackedProduct.h"

#include <stdlib.h>

#define SGEMM_PARAMETERS                                                                                        \
    bool transposeA, bool transposeB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,     \
        ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc
#define SGEMM_ARGUMENTS transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc

// One product with its own packing space.
CCA_INLINE void sgemm_blocked(const int rows, const int vectors, SGEMM_PARAMETERS) {
    if (m <= 0 || n <= 0) return;
    float *workspace = aligned_alloc(64, (size_t)sgemm_workspace_count(rows, vectors, m, n, k) * sizeof(float));
    if (!workspace) abort();
    sgemm_packed(rows, vectors, SGEMM_ARGUMENTS, workspace);
    free(workspace);
}

static void sgemm_portable(SGEMM_PARAMETERS) { sgemm_blocked(portable_rows, portable_vectors, SGEMM_ARGUMENTS); }

#if defined(__x86_64__)
CCA_TARGET_AVX2 static void sgemm_avx2(SGEMM_PARAMETERS) { sgemm_blocked(avx2_rows, avx2_vectors, SGEMM_ARGUMENTS); }

CCA_TARGET_AVX512 static void sgemm_avx512(SGEMM_PARAMETERS) {
    sgemm_blocked(avx512_rows, avx512_vectors, SGEMM_ARGUMENTS);
}
#endif

#if defined(__aarch64__)
static void sgemm_neon(SGEMM_PARAMETERS) { sgemm_blocked(neon_rows, neon_vectors, SGEMM_ARGUMENTS); }
#endif

void cca_sgemm(CCAKernelVariant variant, SGEMM_PARAMETERS) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return sgemm_avx2(SGEMM_ARGUMENTS);
    case CCAKernelVariantAVX512: return sgemm_avx512(SGEMM_ARGUMENTS);
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return sgemm_neon(SGEMM_ARGUMENTS);
#endif
    default: return sgemm_portable(SGEMM_ARGUMENTS);
    }
}

int cca_sgemm_tile_rows(CCAKernelVariant variant) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return avx2_rows;
    case CCAKernelVariantAVX512: return avx512_rows;
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return neon_rows;
#endif
    default: return portable_rows;
    }
}

int cca_sgemm_tile_columns(CCAKernelVariant variant) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return avx2_vectors * cca_lanes;
    case CCAKernelVariantAVX512: return avx512_vectors * cca_lanes;
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON: return neon_vectors * cca_lanes;
#endif
    default: return portable_vectors * cca_lanes;
    }
}
