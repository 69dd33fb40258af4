// cca_values.cu: CCA step 3, the value shift: v[t] = [x_t . Wv_current | x_{t-1} . Wv_delayed] (zero at t = 0),
// or [x_t . Wv_current | x_t . Wv_delayed] without the shift, gathered from the fused projection's rows.
//
// Tiling: one thread per element of v ([B*S, ek]), a flat grid-stride loop; consecutive threads take
// consecutive columns, so reads and writes are coalesced.
#include "common.cuh"

extern "C" __global__ void cca_values(
    const T* __restrict__ projections,  // [B*S, stride]: columns [first, first + ek/2) x_t . Wv_current, then ek/2 of x_t . Wv_delayed
    T* __restrict__ v,                  // [B*S, ek]
    long long rows, int stride, int first, int value_width, int seq_len, int value_shift)
{
    const int half = value_width / 2;
    const long long count = rows * value_width;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long row = e / value_width;
        const int column = static_cast<int>(e % value_width);
        T value;
        if (column < half) {
            value = projections[row * stride + first + column];
        } else if (!value_shift) {
            value = projections[row * stride + first + column];
        } else if (row % seq_len == 0) {
            value = from_float<T>(0.f);
        } else {
            value = projections[(row - 1) * stride + first + column];
        }
        v[e] = value;
    }
}
