// zaya_router.cu: the element-wise steps of ZAYA's router (the GPU twin of Models/ZayaRouter.swift), which
// runs in float32 whatever the model's storage type, so that its top-1 choice is the CPU's.
//
// zaya_router_state: state = projected + bias (+ previous * scale after the first layer), [rows, R]; `state`
// may be `projected` itself.
// zaya_bias_gelu: x = gelu(x + bias) in place, the exact erf form, [rows, width].
// zaya_router_choose: one thread per row of the [rows, classes] scores: softmax, then the class with the
// largest probability + balancing bias (the first of equals, as on the CPU); class `classes - 1` is the
// skip expert, written as expert -1 with weight 0, any other as its index with its unbiased probability.
#include "common.cuh"
#include "elementwise.cuh"

extern "C" __global__ void zaya_router_state(const T* projected, const float* __restrict__ bias,
                                             const float* __restrict__ previous, const float* __restrict__ scale,
                                             float* state, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const int c = static_cast<int>(e % width);
        float value = to_float(projected[e]) + bias[c];
        if (previous) value += previous[e] * scale[c];
        state[e] = value;
    });
}

extern "C" __global__ void zaya_bias_gelu(T* x, const float* __restrict__ bias, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const float value = to_float(x[e]) + bias[e % width];
        x[e] = from_float<T>(0.5f * value * (1.f + erff(value * 0.70710678118654752f)));
    });
}

extern "C" __global__ void zaya_router_choose(const T* __restrict__ scores, const float* __restrict__ balancing,
                                              int* __restrict__ expert, float* __restrict__ weight, long long rows, int classes)
{
    for_each_element(rows, [&](long long row) {
        const T* s = scores + row * classes;
        float maximum = negative_infinity();
        for (int c = 0; c < classes; ++c) maximum = fmaxf(maximum, to_float(s[c]));
        float total = 0.f;
        for (int c = 0; c < classes; ++c) total += expf(to_float(s[c]) - maximum);
        int best = 0;
        float best_probability = expf(to_float(s[0]) - maximum) / total;
        for (int c = 1; c < classes; ++c) {
            const float p = expf(to_float(s[c]) - maximum) / total;
            if (p + balancing[c] > best_probability + balancing[best]) { best = c; best_probability = p; }
        }
        const bool skip = best == classes - 1;
        expert[row] = skip ? -1 : best;
        weight[row] = skip ? 0.f : best_probability;
    });
}
