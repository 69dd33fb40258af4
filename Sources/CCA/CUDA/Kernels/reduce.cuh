// reduce.cuh: the sums of the training kernels, all in a fixed order (no atomics), so that every run of a
// kernel on the same input gives the same bits.
//
// block_sum (block_reduce with AddValues): the sum of one value per thread over a block (blockDim.x a multiple
// of 32, at most 1024): warp_reduce within each warp (every lane ends with the same bits, since each butterfly step adds the same
// two numbers in either order), then the warp sums in warp order.
//
// reduce_columns: sums over rows, one per column, for bias and weight-vector gradients. Blocks of
// REDUCE_THREADS = 256 threads, REDUCE_COLUMNS = 32 columns by REDUCE_LANES = 8 row lanes; grid
// (ceil(width / 32), chunks). Block (x, y) sums columns [32x, 32x + 32) over chunk y of the rows: lane l
// takes rows begin + l, begin + l + 8, ... in order (a warp reads 32 consecutive columns of one row), then
// lane 0 adds the 8 lane sums in lane order. With one chunk the result is final; with more, the caller
// reduces the [chunks, width] partial sums again (column_sums.cu, float32 build).
#pragma once

struct AddValues {
    template <typename Value> __device__ __forceinline__ Value operator()(Value a, Value b) const { return a + b; }
};
struct MaxOfFloats {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The sum (with MaxOfFloats, the max) over a warp's 32 lanes by butterfly shuffles; every lane ends with the same bits.
template <typename Value, typename Combine>
__device__ __forceinline__ Value warp_reduce(Value value, Combine combine) {
    for (int offset = 16; offset > 0; offset /= 2) value = combine(value, __shfl_xor_sync(0xffffffffu, value, offset));
    return value;
}

template <typename Value>
__device__ __forceinline__ Value warp_sum(Value value) { return warp_reduce(value, AddValues()); }

// The sum (or, with MaxOfFloats, the max) of one value per thread over a block, in the order block_sum states.
template <typename Value, typename Combine>
__device__ __forceinline__ Value block_reduce(Value value, Combine combine) {
    __shared__ Value warp_values[32];
    value = warp_reduce(value, combine);
    __syncthreads();  // a previous call's readers are done with warp_values
    if (threadIdx.x % 32 == 0) warp_values[threadIdx.x / 32] = value;
    __syncthreads();
    Value total = warp_values[0];
    for (int w = 1; w < static_cast<int>(blockDim.x) / 32; ++w) total = combine(total, warp_values[w]);
    return total;
}

template <typename Value>
__device__ __forceinline__ Value block_sum(Value value) { return block_reduce(value, AddValues()); }

constexpr int REDUCE_COLUMNS = 32, REDUCE_LANES = 8, REDUCE_THREADS = REDUCE_COLUMNS * REDUCE_LANES;

// out[blockIdx.y * width + column] = (accumulate ? that : 0) + the sum of value(row, column) over the
// block's chunk of `rows`.
template <typename Value>
__device__ __forceinline__ void reduce_columns(long long rows, int width, Value value, float* __restrict__ out,
                                               int accumulate) {
    __shared__ float lane_sums[REDUCE_LANES][REDUCE_COLUMNS];
    const int x = threadIdx.x % REDUCE_COLUMNS, lane = threadIdx.x / REDUCE_COLUMNS;
    const int column = blockIdx.x * REDUCE_COLUMNS + x;
    const long long per_chunk = (rows + gridDim.y - 1) / gridDim.y;
    const long long begin = blockIdx.y * per_chunk;
    const long long end = begin + per_chunk < rows ? begin + per_chunk : rows;
    float sum = 0.f;
    if (column < width) {
        for (long long row = begin + lane; row < end; row += REDUCE_LANES) sum += value(row, column);
    }
    lane_sums[lane][x] = sum;
    __syncthreads();
    if (lane == 0 && column < width) {
        float total = 0.f;
        for (int l = 0; l < REDUCE_LANES; ++l) total += lane_sums[l][x];
        float* destination = out + static_cast<long long>(blockIdx.y) * width + column;
        *destination = accumulate ? *destination + total : total;
    }
}
