// rms_norm.cu: RMSNorm of each row, y = x / sqrt(mean(x^2) + eps) * weight, and its backward pass
// (the GPU twin of Operations/RMSNorm.swift). Weights and their gradient are float32.
//
// rms_norm: one block of THREADS threads per row. Each thread takes a strided slice of the row, the block
// sums the squares (block_sum), and every thread writes its slice scaled; thread 0 writes the row's
// inverse RMS, which the backward pass reads. The input row may be part of a wider matrix
// (`input_stride` >= width), so the norm can read the first columns of a projection in place; the output
// is dense [rows, width]. With `residual` (dense [rows, width]), the row normalised is
// h = input + residual, rounded to T and written to `sum` first (the pre-norm block's residual add fused
// with the next norm); `sum` may be `input` itself.
//
// rms_norm_backward: one block of THREADS threads per row: with g = dy * w and r the inverse RMS,
// dx = r * g - r^3 * x * (g . x) / width. `dx` may be a column range of a wider matrix (`dx_stride`).
//
// rms_norm_weight_gradient: dWeight = sum over rows of dy * x * r, through reduce_columns (reduce.cuh):
// blocks of REDUCE_THREADS, grid (ceil(width / 32), chunks), `out` [chunks, width].
#include "common.cuh"
#include "reduce.cuh"

constexpr int THREADS = 256;

extern "C" __global__ void __launch_bounds__(THREADS) rms_norm(
    const T* input, long long input_stride, const T* __restrict__ residual, T* sum, T* __restrict__ output,
    const float* __restrict__ weight, float* __restrict__ inverse_rms, int width, float epsilon)
{
    const long long row = blockIdx.x;
    const T* x = input + row * input_stride;
    T* h = residual ? sum + row * width : nullptr;
    T* y = output + row * width;

    float squares = 0.f;
    for (int c = threadIdx.x; c < width; c += THREADS) {
        float value = to_float(x[c]);
        if (residual) {
            const T rounded = from_float<T>(value + to_float(residual[row * width + c]));
            h[c] = rounded;
            value = to_float(rounded);
        }
        squares += value * value;
    }
    const float total = block_sum(squares);
    const float inverse = 1.f / sqrtf(total / width + epsilon);
    if (threadIdx.x == 0 && inverse_rms) inverse_rms[row] = inverse;
    // Each thread reads back only the elements it wrote itself, so `sum` may alias `input`.
    for (int c = threadIdx.x; c < width; c += THREADS) {
        const float value = to_float(residual ? h[c] : x[c]);
        y[c] = from_float<T>(value * inverse * weight[c]);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_backward(
    const T* __restrict__ dy, const T* __restrict__ input, long long input_stride, const float* __restrict__ weight,
    const float* __restrict__ inverse_rms, T* __restrict__ dx, long long dx_stride, int width)
{
    const long long row = blockIdx.x;
    const T* g = dy + row * width;
    const T* x = input + row * input_stride;
    const float inverse = inverse_rms[row];

    float dot = 0.f;
    for (int c = threadIdx.x; c < width; c += THREADS) dot += to_float(g[c]) * weight[c] * to_float(x[c]);
    const float correction = inverse * inverse * inverse * block_sum(dot) / width;
    for (int c = threadIdx.x; c < width; c += THREADS) {
        dx[row * dx_stride + c] = from_float<T>(inverse * to_float(g[c]) * weight[c] - correction * to_float(x[c]));
    }
}

extern "C" __global__ void __launch_bounds__(REDUCE_THREADS) rms_norm_weight_gradient(
    const T* __restrict__ dy, const T* __restrict__ input, long long input_stride, const float* __restrict__ inverse_rms,
    long long rows, int width, float* __restrict__ out, int accumulate)
{
    reduce_columns(rows, width, [&](long long row, int c) {
        return to_float(dy[row * width + c]) * to_float(input[row * input_stride + c]) * inverse_rms[row];
    }, out, accumulate);
}
