#include "CCAKernels.h"

bool cca_kernel_variant_supported(CCAKernelVariant variant) {
    switch (variant) {
    case CCAKernelVariantPortable:
        return true;
#if defined(__x86_64__)
    // The compiler's CPU model also checks that the operating system saves the wide registers (XGETBV).
    case CCAKernelVariantAVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CCAKernelVariantAVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case CCAKernelVariantNEON:
        return true;
#endif
    default:
        return false;
    }
}

CCAKernelVariant cca_kernel_best_variant(void) {
    const CCAKernelVariant fastestFirst[] = {CCAKernelVariantAVX512, CCAKernelVariantAVX2, CCAKernelVariantNEON};
    for (size_t i = 0; i < sizeof fastestFirst / sizeof fastestFirst[0]; i++) {
        if (cca_kernel_variant_supported(fastestFirst[i])) return fastestFirst[i];
    }
    return CCAKernelVariantPortable;
}
