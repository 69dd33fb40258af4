// attention_backward_prepare.cu: the small passes around the attention backward kernels.
//
// attention_backward_dot (before): delta[r] = sum_c dO[r, c] * O[r, c] for every (position, query head) row r
// of [B, S, Hq, DV] tensors: the row sums that dZ = P * (dP - delta) subtracts. One warp per row, lanes over
// channels, a shuffle reduction; grid-stride over rows (grid of about 8 blocks per SM, 256 threads).
//
// attention_backward_store_sums (after the Hopper kernel, attention_backward_wgmma.cu, which adds each
// block's share of dq / scale, and with split key blocks of dk / scale and dv, into float32 sums):
// out = factor * sum, four elements a thread per step, grid-stride.

#include "common.cuh"

extern "C" __global__ void attention_backward_dot(
    const T* __restrict__ d_out,   // [rows, DV]
    const T* __restrict__ out,     // [rows, DV]
    float* __restrict__ delta,     // [rows]
    long long rows, int value_dim)
{
    const int lane = threadIdx.x % 32;
    const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
    for (long long row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; row < rows; row += warps) {
        float sum = 0.f;
        for (int c = lane; c < value_dim; c += 32) {
            sum += to_float(d_out[row * value_dim + c]) * to_float(out[row * value_dim + c]);
        }
        for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        if (lane == 0) delta[row] = sum;
    }
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
