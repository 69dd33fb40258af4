// Internal to CCAKernels: the exponential and the softmax pieces built on it, 16 lanes at a time, inlined
// into the functions of each instruction set (Exponential.c, Attention.c).
#ifndef CCA_KERNELS_EXPONENTIAL_VECTOR_H
#define CCA_KERNELS_EXPONENTIAL_VECTOR_H

#include "Vector.h"

static const float exp_lowest_input = -87.3f;  // e^-87.3 ≈ 1.2e-38, the smallest normal float
static const float exp_highest_input = 88.5f;  // past ln(FLT_MAX) ≈ 88.72 after rounding: gives +inf
static const float rounding_shift = 12582912.0f;  // 1.5 · 2^23

// exp(x) = 2^n · e^r with n = round(x / ln 2), |r| ≤ ln 2 / 2; e^r by its Taylor series to degree 7
// (truncation below 1e-8 relative), 2^n built in the exponent bits. Below -87.3 gives 0, NaN stays NaN.
CCA_INLINE cca_vector exp_vector(cca_vector x) {
    const cca_vector clamped =
        __builtin_elementwise_min(__builtin_elementwise_max(x, cca_splat(exp_lowest_input)), cca_splat(exp_highest_input));
    // Adding 1.5·2^23 rounds x / ln 2 to the nearest integer in the float add itself and leaves that
    // integer in the low mantissa bits, with no float-to-int conversion.
    const cca_vector shifted = cca_multiply_add(clamped, cca_splat(1.4426950408889634f), cca_splat(rounding_shift));
    const cca_vector n = shifted - rounding_shift;
    // ln 2 split into a part exact in float (hi) and the rest (lo), so r loses no bits.
    const cca_vector r = clamped - n * 0.693145751953125f - n * 1.428606765330187e-6f;
    cca_vector p = cca_splat(1.0f / 5040);
    p = cca_multiply_add(p, r, cca_splat(1.0f / 720));
    p = cca_multiply_add(p, r, cca_splat(1.0f / 120));
    p = cca_multiply_add(p, r, cca_splat(1.0f / 24));
    p = cca_multiply_add(p, r, cca_splat(1.0f / 6));
    p = cca_multiply_add(p, r, cca_splat(0.5f));
    p = cca_multiply_add(p, r, cca_splat(1));
    p = cca_multiply_add(p, r, cca_splat(1));
    int shift_bits;
    memcpy(&shift_bits, &rounding_shift, sizeof shift_bits);
    const cca_int_vector exponent = ((cca_int_vector)shifted - shift_bits + 127) << 23;
    const cca_int_vector result = (cca_int_vector)(p * (cca_vector)exponent);
    const cca_int_vector underflow = x < exp_lowest_input, nan = x != x;
    return (cca_vector)((result & ~underflow & ~nan) | ((cca_int_vector)x & nan));
}

// The first `count` (< 16) values, the other lanes `fill`.
CCA_INLINE cca_vector load_partial(const float *values, ptrdiff_t count, float fill) {
    float lanes[cca_lanes];
    for (int i = 0; i < cca_lanes; i++) lanes[i] = i < count ? values[i] : fill;
    return cca_load(lanes);
}

CCA_INLINE void store_partial(float *values, ptrdiff_t count, cca_vector vector) {
    float lanes[cca_lanes];
    cca_store(lanes, vector);
    memcpy(values, lanes, (size_t)count * sizeof(float));
}

CCA_INLINE float shifted_exp_sum(float *values, ptrdiff_t count, float shift) {
    cca_vector sums = cca_splat(0);
    ptrdiff_t i = 0;
    for (; i + cca_lanes <= count; i += cca_lanes) {
        const cca_vector weights = exp_vector(cca_load(values + i) - shift);
        cca_store(values + i, weights);
        sums += weights;
    }
    if (i < count) {
        const cca_vector weights = exp_vector(load_partial(values + i, count - i, -__builtin_inff()) - shift);
        store_partial(values + i, count - i, weights);
        sums += weights;
    }
    return cca_sum(sums);
}

CCA_INLINE float maximum(const float *values, ptrdiff_t count) {
    cca_vector largest = cca_splat(-__builtin_inff());
    ptrdiff_t i = 0;
    for (; i + cca_lanes <= count; i += cca_lanes) largest = __builtin_elementwise_max(largest, cca_load(values + i));
    if (i < count) largest = __builtin_elementwise_max(largest, load_partial(values + i, count - i, -__builtin_inff()));
    return __builtin_reduce_max(largest);
}

CCA_INLINE void scale(float *values, ptrdiff_t count, float factor) {
    ptrdiff_t i = 0;
    for (; i + cca_lanes <= count; i += cca_lanes) cca_store(values + i, cca_load(values + i) * factor);
    for (; i < count; i++) values[i] *= factor;
}

CCA_INLINE void exponentials(float *values, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + cca_lanes <= count; i += cca_lanes) cca_store(values + i, exp_vector(cca_load(values + i)));
    if (i < count) store_partial(values + i, count - i, exp_vector(load_partial(values + i, count - i, 0)));
}

#endif
