// column_sums.cu: deterministic float32 sums over the rows of a matrix, one per column: bias gradients,
// the key temperature's gradient, and the second pass of every other reduction over rows (reduce.cuh).
//
// The matrix is `rows` rows of `width` T elements, `stride` apart; the float32 build also sums float32
// partial sums and gradients. Launch: blocks of REDUCE_THREADS, grid (ceil(width / REDUCE_COLUMNS),
// chunks); `out` is [chunks, width]: the result when chunks is 1, otherwise partial sums for another pass.
#include "common.cuh"
#include "reduce.cuh"

extern "C" __global__ void __launch_bounds__(REDUCE_THREADS) column_sums(
    const T* __restrict__ input, long long rows, int width, long long stride, float* __restrict__ out, int accumulate)
{
    reduce_columns(rows, width, [&](long long row, int column) { return to_float(input[row * stride + column]); },
                   out, accumulate);
}
