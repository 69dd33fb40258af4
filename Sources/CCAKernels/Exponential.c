// The exponential and softmax rows of the C API, compiled per instruction set.
#include "CCAKernels.h"
#include "ExponentialVector.h"

CCA_INLINE void softmax_rows(float *values, ptrdiff_t rows, ptrdiff_t rowStride, ptrdiff_t width, ptrdiff_t visible,
                             ptrdiff_t visibleStep) {
    if (width <= 0) return;
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = values + r * rowStride;
        ptrdiff_t count = visible + r * visibleStep;
        count = count < 0 ? 0 : count > width ? width : count;
        const float largest = maximum(row, count);
        if (largest == -__builtin_inff()) {
            memset(row, 0, (size_t)width * sizeof(float));
            continue;
        }
        scale(row, count, 1 / shifted_exp_sum(row, count, largest));
        memset(row + count, 0, (size_t)(width - count) * sizeof(float));
    }
}

typedef struct {
    void (*exp)(float *, ptrdiff_t);
    float (*max)(const float *, ptrdiff_t);
    float (*exp_shifted_sum)(float *, ptrdiff_t, float);
    void (*scale)(float *, ptrdiff_t, float);
    void (*softmax_rows)(float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t);
} vector_math;

// The five functions of one variant, each the inline code above (and of ExponentialVector.h) compiled under `target`.
#define DEFINE_VECTOR_MATH(name, target)                                                                          \
    target static void exp_##name(float *v, ptrdiff_t n) { exponentials(v, n); }                                 \
    target static float max_##name(const float *v, ptrdiff_t n) { return maximum(v, n); }                         \
    target static float exp_shifted_sum_##name(float *v, ptrdiff_t n, float s) { return shifted_exp_sum(v, n, s); } \
    target static void scale_##name(float *v, ptrdiff_t n, float f) { scale(v, n, f); }                          \
    target static void softmax_rows_##name(float *v, ptrdiff_t rows, ptrdiff_t stride, ptrdiff_t width,          \
                                           ptrdiff_t visible, ptrdiff_t step) {                                  \
        softmax_rows(v, rows, stride, width, visible, step);                                                      \
    }                                                                                                             \
    static const vector_math name##_math = {exp_##name, max_##name, exp_shifted_sum_##name, scale_##name,         \
                                            softmax_rows_##name};

DEFINE_VECTOR_MATH(portable, )
#if defined(__x86_64__)
DEFINE_VECTOR_MATH(avx2, CCA_TARGET_AVX2)
DEFINE_VECTOR_MATH(avx512, CCA_TARGET_AVX512)
#endif

static const vector_math *math(CCAKernelVariant variant) {
    switch (variant) {
#if defined(__x86_64__)
    case CCAKernelVariantAVX2: return &avx2_math;
    case CCAKernelVariantAVX512: return &avx512_math;
#endif
    // On aarch64 the portable code is NEON code already: the compiler maps the 16-lane vectors onto
    // four 128-bit registers, and these loops have no register tile to size differently.
    default: return &portable_math;
    }
}

void cca_exp(CCAKernelVariant variant, float *values, ptrdiff_t count) { math(variant)->exp(values, count); }

float cca_max(CCAKernelVariant variant, const float *values, ptrdiff_t count) { return math(variant)->max(values, count); }

float cca_exp_shifted_sum(CCAKernelVariant variant, float *values, ptrdiff_t count, float shift) {
    return math(variant)->exp_shifted_sum(values, count, shift);
}

void cca_scale(CCAKernelVariant variant, float *values, ptrdiff_t count, float factor) {
    math(variant)->scale(values, count, factor);
}

void cca_softmax_rows(CCAKernelVariant variant, float *values, ptrdiff_t rows, ptrdiff_t rowStride, ptrdiff_t width,
                      ptrdiff_t visible, ptrdiff_t visibleStep) {
    math(variant)->softmax_rows(values, rows, rowStride, width, visible, visibleStep);
}
