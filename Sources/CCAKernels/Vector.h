// Internal to CCAKernels: the 16-float vector every kernel is written in, and the target attributes
// each instruction-set variant is compiled with.
//
// One source serves every variant: the kernels are written once with clang's vector extensions on a
// 16-float vector and inlined into a function per instruction set. Under AVX-512 a vector is one zmm
// register, under AVX2 two ymm, under NEON or SSE2 four 128-bit registers.
#ifndef CCA_KERNELS_VECTOR_H
#define CCA_KERNELS_VECTOR_H

#include <stddef.h>
#include <string.h>

// The 64-byte vectors below only pass between always-inline functions, so the ABI that -Wpsabi warns
// about (how such a vector is passed without AVX-512) is never used.
#pragma clang diagnostic ignored "-Wpsabi"

#define CCA_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__)
#define CCA_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#define CCA_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

enum { cca_lanes = 16 };
typedef float cca_vector __attribute__((vector_size(64)));
typedef int cca_int_vector __attribute__((vector_size(64)));

CCA_INLINE cca_vector cca_load(const float *p) {
    cca_vector v;
    memcpy(&v, p, sizeof v);
    return v;
}

CCA_INLINE void cca_store(float *p, cca_vector v) { memcpy(p, &v, sizeof v); }

// Every lane x (a vector-plus-scalar `0 + x` would not be folded: it differs from x at -0).
CCA_INLINE cca_vector cca_splat(float x) { return (cca_vector){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

// a · b + c, fused where the variant's instruction set has FMA (clang contracts the single expression,
// `-ffp-contract=on`); a separate multiply and add on the portable x86-64 baseline, which has none.
CCA_INLINE cca_vector cca_multiply_add(cca_vector a, cca_vector b, cca_vector c) { return a * b + c; }

// Sum of the lanes, as a tree of halves (clang's __builtin_reduce_add takes integers only).
CCA_INLINE float cca_sum(cca_vector v) {
    typedef float half8 __attribute__((vector_size(32)));
    typedef float half4 __attribute__((vector_size(16)));
    half8 s8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    half4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

CCA_INLINE float cca_max_lane(cca_vector v) { return __builtin_reduce_max(v); }

#endif
