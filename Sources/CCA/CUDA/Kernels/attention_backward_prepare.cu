// attention_backward_prepare.cu: the small pass before the attention backward kernels.
//
// attention_backward_dot: delta[r] = sum_c dO[r, c] * O[r, c] for every (position, query head) row r of
// [B, S, Hq, DV] tensors: the row sums that dZ = P * (dP - delta) subtracts. One warp per row, lanes over
// channels, a shuffle reduction; grid-stride over rows (grid of about 8 blocks per SM, 256 threads).

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
