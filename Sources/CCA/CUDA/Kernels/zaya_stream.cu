// zaya_stream.cu: ZAYA's float32 residual stream (the GPU twin of ZayaModel's embedding scale and of
// Operations/ResidualScaling.swift followed by RMSNorm).
//
// zaya_input_scale: stream = (embedded + bias) * scale, one thread per element (a flat grid-stride loop),
// the embedded rows in T, the stream float32.
//
// zaya_add_bias (at the end): the LM head's optional bias.
//
// zaya_scale_norm: one block of THREADS threads per row. With `hidden` (T [rows, width], a block's output),
// the residual scaling merges it into the stream in place first, r = (h + b_h) * s_h + (r + b_r) * s_r;
// then, unless `weight` is null (a merge alone), the row of the stream is normalised,
// y = r / sqrt(mean(r^2) + eps) * weight, and written as T into `out` and, when `out_float` is given, as
// float32 there too (the router reads float32). Without `hidden` it is the plain norm of the float32 stream (the first layer's input norm, the final norm). Each thread
// reads back only the stream elements it wrote itself.
#include "common.cuh"
#include "elementwise.cuh"
#include "reduce.cuh"

constexpr int THREADS = 256;

extern "C" __global__ void zaya_input_scale(const T* __restrict__ embedded, const float* __restrict__ bias,
                                            const float* __restrict__ scale, float* __restrict__ stream, long long rows,
                                            int width)
{
    for_each_element(rows * width, [&](long long e) {
        const int c = static_cast<int>(e % width);
        stream[e] = (to_float(embedded[e]) + bias[c]) * scale[c];
    });
}

extern "C" __global__ void __launch_bounds__(THREADS) zaya_scale_norm(
    const T* __restrict__ hidden, float* stream, const float* __restrict__ hidden_scale, const float* __restrict__ hidden_bias,
    const float* __restrict__ residual_scale, const float* __restrict__ residual_bias, const float* __restrict__ weight,
    T* __restrict__ out, float* __restrict__ out_float, int width, float epsilon)
{
    const long long row = blockIdx.x;
    float* r = stream + row * width;
    float squares = 0.f;
    // Unrolled so that a thread's loads are in flight together: one row per block, so latency is the cost.
#pragma unroll 8
    for (int c = threadIdx.x; c < width; c += THREADS) {
        float value = r[c];
        if (hidden) {
            value = (to_float(hidden[row * width + c]) + hidden_bias[c]) * hidden_scale[c]
                + (value + residual_bias[c]) * residual_scale[c];
            r[c] = value;
        }
        squares += value * value;
    }
    if (!weight) return;
    const float inverse = 1.f / sqrtf(block_sum(squares) / width + epsilon);
#pragma unroll 8
    for (int c = threadIdx.x; c < width; c += THREADS) {
        const float y = r[c] * inverse * weight[c];
        out[row * width + c] = from_float<T>(y);
        if (out_float) out_float[row * width + c] = y;
    }
}

// zaya_add_bias: x[row, c] += bias[c] (the LM head's optional bias), one thread per element.
extern "C" __global__ void zaya_add_bias(T* x, const float* __restrict__ bias, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) { x[e] = from_float<T>(to_float(x[e]) + bias[e % width]); });
}
