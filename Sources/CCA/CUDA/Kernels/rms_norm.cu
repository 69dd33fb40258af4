// rms_norm.cu: RMSNorm of each row, y = x / sqrt(mean(x^2) + eps) * weight, and its backward pass with the
// weight gradient (the GPU twin of Operations/RMSNorm.swift). Weights and their gradient are float32.
//
// One warp per row, WARPS rows a block: a row of E = 768 is 3 16-byte words of bfloat16 a lane, so a block
// per row (as before) left most threads idle and most of the time in barriers. Lane l takes N consecutive
// columns at l * N, l * N + 32 * N, ...: N = 8 (whole 16-byte words) when the host found every row and the
// weight 16-byte aligned (`step`), else 1. The row's sums are warp_sum (reduce.cuh): no block barrier.
//
// rms_norm: the lanes sum the squares, then write their columns scaled; lane 0 writes the row's inverse RMS,
// which the backward pass reads. The input row may be part of a wider matrix (`input_stride` >= width), so
// the norm can read the first columns of a projection in place; the output is dense [rows, width]. With
// `residual` (dense [rows, width]), the row normalised is h = input + residual, rounded to T and written to
// `sum` first (the pre-norm block's residual add fused with the next norm); `sum` may be `input` itself.
//
// rms_norm_backward: with g = dy * w and r the inverse RMS, dx = r * g - r^3 * x * (g . x) / width, plus
// `residual_gradient` (dense [rows, width], or null) when given: the gradient the residual path carries,
// so that the backward of a pre-norm block adds the norm's dx into it in the same pass. `dx` may be a column
// range of a wider matrix (`dx_stride`), or `residual_gradient` itself when dense. The weight gradient
// dw = sum over rows of dy * x * r comes out of the same pass: a grid of a few blocks a multiprocessor, each
// warp taking rows warp, warp + (warps in the grid), ... and adding into its own float32 row of dynamic
// shared memory [WARPS, width]; at the end the block sums its warps' rows in warp order into
// partials[blockIdx.x] ([gridDim.x, width]), which the host sums over blocks (ColumnSums). Fixed order,
// no atomics: the same input gives the same bits.
#include "common.cuh"
#include "elementwise.cuh"
#include "reduce.cuh"

constexpr int WARPS = 8, THREADS = WARPS * 32;

template <int N> __device__ void rms_norm_rows(
    const T* input, long long input_stride, const T* __restrict__ residual, T* sum, T* __restrict__ output,
    const float* __restrict__ weight, float* __restrict__ inverse_rms, long long rows, int width, float epsilon)
{
    const int lane = threadIdx.x % 32;
    const long long row = static_cast<long long>(blockIdx.x) * WARPS + threadIdx.x / 32;
    if (row >= rows) return;
    const T* x = input + row * input_stride;
    T* h = residual ? sum + row * width : nullptr;
    T* y = output + row * width;

    float squares = 0.f;
    for (int c = lane * N; c < width; c += 32 * N) {
        Elements<N> value = load<N>(x + c);
        if (residual) {
            const Elements<N> other = load<N>(residual + row * width + c);
            for (int k = 0; k < N; ++k) value.value[k] = to_float(from_float<T>(value.value[k] + other.value[k]));
            store_elements(h + c, value);
        }
        for (int k = 0; k < N; ++k) squares += value.value[k] * value.value[k];
    }
    const float inverse = 1.f / sqrtf(warp_sum(squares) / width + epsilon);
    if (lane == 0 && inverse_rms) inverse_rms[row] = inverse;
    // Each lane reads back only the elements it wrote itself, so `sum` may alias `input`.
    for (int c = lane * N; c < width; c += 32 * N) {
        Elements<N> value = load<N>(residual ? h + c : x + c);
        const Elements<N> w = load<N>(weight + c);
        for (int k = 0; k < N; ++k) value.value[k] *= inverse * w.value[k];
        store_elements(y + c, value);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) rms_norm(
    const T* input, long long input_stride, const T* __restrict__ residual, T* sum, T* __restrict__ output,
    const float* __restrict__ weight, float* __restrict__ inverse_rms, long long rows, int width, float epsilon, int step)
{
    if (step == 8) rms_norm_rows<8>(input, input_stride, residual, sum, output, weight, inverse_rms, rows, width, epsilon);
    else rms_norm_rows<1>(input, input_stride, residual, sum, output, weight, inverse_rms, rows, width, epsilon);
}

template <int N> __device__ void rms_norm_backward_rows(
    const T* __restrict__ dy, const T* __restrict__ input, long long input_stride, const float* __restrict__ weight,
    const float* __restrict__ inverse_rms, const T* residual_gradient, T* dx, long long dx_stride, long long rows, int width,
    float* __restrict__ partials)
{
    extern __shared__ float warp_partials[];  // [WARPS][width]
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float* partial = warp_partials + warp * width;
    for (int c = lane * N; c < width; c += 32 * N) store_elements(partial + c, Elements<N>{});
    // Every warp of the block runs the same number of iterations (rows past the end do nothing but take part
    // in the shuffles), so no warp reaches the block barrier below early.
    for (long long first = static_cast<long long>(blockIdx.x) * WARPS; first < rows; first += static_cast<long long>(gridDim.x) * WARPS) {
        const long long row = first + warp;
        const bool active = row < rows;
        const T* g = dy + row * width;
        const T* x = input + row * input_stride;
        float dot = 0.f;
        if (active) {
            for (int c = lane * N; c < width; c += 32 * N) {
                const Elements<N> gs = load<N>(g + c), xs = load<N>(x + c), w = load<N>(weight + c);
                for (int k = 0; k < N; ++k) dot += gs.value[k] * w.value[k] * xs.value[k];
            }
        }
        dot = warp_sum(dot);
        if (!active) continue;
        const float inverse = inverse_rms[row];
        const float correction = inverse * inverse * inverse * dot / width;
        for (int c = lane * N; c < width; c += 32 * N) {
            const Elements<N> gs = load<N>(g + c), xs = load<N>(x + c), w = load<N>(weight + c);
            Elements<N> out, sums = load<N>(partial + c);
            Elements<N> carried = residual_gradient ? load<N>(residual_gradient + row * width + c) : Elements<N>{};
            for (int k = 0; k < N; ++k) {
                out.value[k] = inverse * gs.value[k] * w.value[k] - correction * xs.value[k] + carried.value[k];
                sums.value[k] += gs.value[k] * xs.value[k] * inverse;
            }
            store_elements(dx + row * dx_stride + c, out);
            store_elements(partial + c, sums);
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < width; c += THREADS) {
        float total = 0.f;
        for (int w = 0; w < WARPS; ++w) total += warp_partials[w * width + c];
        partials[static_cast<long long>(blockIdx.x) * width + c] = total;
    }
}

// Blocks of THREADS threads with WARPS * width * 4 bytes of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(THREADS) rms_norm_backward(
    const T* __restrict__ dy, const T* __restrict__ input, long long input_stride, const float* __restrict__ weight,
    const float* __restrict__ inverse_rms, const T* residual_gradient, T* dx, long long dx_stride, long long rows, int width,
    float* __restrict__ partials, int step)
{
    if (step == 8) rms_norm_backward_rows<8>(dy, input, input_stride, weight, inverse_rms, residual_gradient, dx, dx_stride, rows, width, partials);
    else rms_norm_backward_rows<1>(dy, input, input_stride, weight, inverse_rms, residual_gradient, dx, dx_stride, rows, width, partials);
}
