// attention_backward_prepare.cu: the small passes around the attention backward kernels.
//
// attention_backward_dot (before): delta[r] = sum_c dO[r, c] * O[r, c] for every (position, query head) row r
// of [B, S, Hq, DV] tensors: the row sums that dZ = P * (dP - delta) subtracts. A row is read in chunks of 8
// elements (16-byte words of bf16) when DV is a multiple of 8, else element by element, by the fewest lanes
// (a power of two, at most a warp) that take one chunk each, so that a warp reads several short rows at once
// (4 rows of 64: bf16 elements one at a time over 32 lanes left the loads 2 bytes wide); a shuffle reduction
// within each row's lanes; grid-stride over rows (grid of about 8 blocks per SM, 256 threads).
//
// attention_backward_store_sums (after the Hopper kernel, attention_backward_wgmma.cu, which adds each
// block's share of dq / scale, and with split key blocks of dk / scale and dv, into float32 sums):
// out = factor * sum, four elements a thread per step, grid-stride.

#include "common.cuh"
#include "elementwise.cuh"

template <int N>
__device__ __forceinline__ void row_dots(const T* __restrict__ d_out, const T* __restrict__ out, float* __restrict__ delta,
                                         long long rows, int value_dim) {
    const int chunks = value_dim / N;
    int lanes = 1;  // per row
    while (lanes < 32 && lanes < chunks) lanes *= 2;
    const int lane = threadIdx.x % 32, slot = lane % lanes, rows_per_warp = 32 / lanes;
    const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
    // The loop bound is the warp's, so that every lane takes part in the shuffles.
    for (long long first = (blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * static_cast<long long>(rows_per_warp);
         first < rows; first += warps * rows_per_warp) {
        const long long row = first + lane / lanes;
        float sum = 0.f;
        if (row < rows) {
            for (int c = slot; c < chunks; c += lanes) {
                const Elements<N> a = load<N>(d_out + row * value_dim + c * N), b = load<N>(out + row * value_dim + c * N);
#pragma unroll
                for (int k = 0; k < N; ++k) sum += a.value[k] * b.value[k];
            }
        }
        for (int offset = lanes / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        if (row < rows && slot == 0) delta[row] = sum;
    }
}

extern "C" __global__ void attention_backward_dot(
    const T* __restrict__ d_out,   // [rows, DV]
    const T* __restrict__ out,     // [rows, DV]
    float* __restrict__ delta,     // [rows]
    long long rows, int value_dim)
{
    if (value_dim % 8 == 0) row_dots<8>(d_out, out, delta, rows, value_dim); else row_dots<1>(d_out, out, delta, rows, value_dim);
}

extern "C" __global__ void attention_backward_store_sums(
    const float* __restrict__ sums,  // [count]
    T* __restrict__ out,             // [count]
    long long count,                 // a multiple of 4
    float factor)
{
    const long long stride = 4LL * gridDim.x * blockDim.x;
    for (long long i = 4LL * (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x); i < count; i += stride) {
        const float4 sum = *reinterpret_cast<const float4*>(sums + i);
        out[i] = from_float<T>(sum.x * factor);
        out[i + 1] = from_float<T>(sum.y * factor);
        out[i + 2] = from_float<T>(sum.z * factor);
        out[i + 3] = from_float<T>(sum.w * factor);
    }
}
