// Independent fused multiply-add chains, for measuring the peak that the matrix kernel can approach.
#include "CCAKernels.h"
#include "Vector.h"

// Chains of 16-lane vectors: 12 zmm registers for AVX-512, 12 ymm (6 vectors) for AVX2, 12 xmm or
// q-registers (3 vectors) otherwise; 12 independent chains cover the 4-cycle FMA latency on two units.
enum { portable_chains = 3, avx2_chains = 6, avx512_chains = 12, max_chains = 12 };

CCA_INLINE float fma_chains(const int chains, long iterations) {
    cca_vector values[max_chains];
    const cca_vector factor = cca_splat(0.999999f), offset = cca_splat(1e-7f);
#pragma clang loop unroll(full)
    for (int i = 0; i < chains; i++) values[i] = cca_splat(1 + i * 1e-3f);
    for (long step = 0; step < iterations; step++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < chains; i++) values[i] = cca_multiply_add(values[i], factor, offset);
    }
    cca_vector total = cca_splat(0);
#pragma clang loop unroll(full)
    for (int i = 0; i < chains; i++) total += values[i];
    return cca_sum(total);
}

static float fma_chains_portable(long iterations) { return fma_chains(portable_chains, iterations); }
#if defined(__x86_64__)
CCA_TARGET_AVX2 static float fma_chains_avx2(long iterations) { return fma_chains(avx2_chains, iterations); }
CCA_TARGET_AVX512 static float fma_chains_avx512(long iterations) { return fma_chains(avx512_chains, iterations); }
#endif

float cca_fma_chains(CCAKernelVariant variant, long iterations) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return fma_chains_avx2(iterations);
    case CCAKernelVariantAVX512: return fma_chains_avx512(iterations);
#endif
    default: return fma_chains_portable(iterations);
    }
}

long cca_fma_chain_flops(CCAKernelVariant variant) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return avx2_chains * cca_lanes * 2;
    case CCAKernelVariantAVX512: return avx512_chains * cca_lanes * 2;
#endif
    default: return portable_chains * cca_lanes * 2;
    }
}
