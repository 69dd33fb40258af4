// moe_experts.cu: one product over the rows of every expert at once, rows grouped by moe_grouping.cu:
// out[slot, n] = sum_k a[row(slot), k] * weight[e, n, k] for each slot of expert e's group
// (offsets[e] <= slot < offsets[e + 1]), weight [experts, out_features, in_features] as transformers stacks it.
//
// Blocks of THREADS threads; grid (tiles, ceil(out_features / columns_per_block)): y runs over the output
// columns, x over the tiles of ROWS slots that the groups make (the host sizes x as their upper bound,
// min(rows, ceil(rows / ROWS) + experts - 1), so a decode step's one row is one block per column range);
// block x takes tiles x, x + gridDim.x, ..., so any grid covers every tile. A block reads the offsets
// into shared memory once and finds each tile's expert there. It copies the tile's input rows into shared
// memory as float32 (at most ROWS x in_features), gathered through `gather` (the original row of each slot) when given; each
// warp then takes output columns in turn, its lanes reading 8 consecutive weights each (16-byte loads of
// bf16, two of float32: in_features must be a multiple of 8), so a weight row is read once per tile and a
// one-row step (B = 1 decoding) reads only its expert's weights. With `scatter`, the result of slot s goes
// to row scatter[s] of `out`, multiplied by row_weight[scatter[s]] (the router's weight): the down
// projection writes the layer's output in place; rows that go to no expert are left as they were.
#include "common.cuh"
#include "elementwise.cuh"

constexpr int THREADS = 256, WARPS = THREADS / 32, ROWS = 8, VECTOR = 8;
constexpr int MAX_EXPERTS = 256;  // MixtureOfExperts.maximumDeviceExperts

__device__ __forceinline__ void load_vector(const float* source, float* values) {
    const float4 low = *reinterpret_cast<const float4*>(source), high = *reinterpret_cast<const float4*>(source + 4);
    values[0] = low.x; values[1] = low.y; values[2] = low.z; values[3] = low.w;
    values[4] = high.x; values[5] = high.y; values[6] = high.z; values[7] = high.w;
}

__device__ __forceinline__ void load_vector(const bf16* source, float* values) {
    const uint4 bits = *reinterpret_cast<const uint4*>(source);
    const unsigned words[4] = {bits.x, bits.y, bits.z, bits.w};
    for (int i = 0; i < 4; ++i) {
        values[2 * i] = __uint_as_float(words[i] << 16);
        values[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) moe_grouped_product(
    const T* __restrict__ a, const int* __restrict__ gather, const T* __restrict__ weight, const int* __restrict__ offsets,
    int experts, int in_features, int out_features, int columns_per_block, const int* __restrict__ scatter,
    const float* __restrict__ row_weight, T* __restrict__ out)
{
    extern __shared__ float rows_in[];  // [min(rows, ROWS)][in_features]
    __shared__ int group_offsets[MAX_EXPERTS + 1];
    for (int e = threadIdx.x; e <= experts; e += THREADS) group_offsets[e] = offsets[e];
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int block_end = (static_cast<int>(blockIdx.y) + 1) * columns_per_block;
    const int column_end = block_end < out_features ? block_end : out_features;

    for (int next = blockIdx.x; ; next += gridDim.x) {
        int tile = next, expert = 0;
        for (; expert < experts; ++expert) {
            const int tiles = (group_offsets[expert + 1] - group_offsets[expert] + ROWS - 1) / ROWS;
            if (tile < tiles) break;
            tile -= tiles;
        }
        if (expert == experts) return;  // the same for every thread of the block
        const int first = group_offsets[expert] + tile * ROWS;
        const int count = group_offsets[expert + 1] - first < ROWS ? group_offsets[expert + 1] - first : ROWS;

        __syncthreads();  // the previous tile's products are done with rows_in
        for (int r = 0; r < count; ++r) {
            const long long source = gather ? gather[first + r] : first + r;
            for (int k = threadIdx.x; k < in_features; k += THREADS) rows_in[r * in_features + k] = to_float(a[source * in_features + k]);
        }
        __syncthreads();

        const T* expert_weight = weight + static_cast<long long>(expert) * out_features * in_features;
        for (int n = blockIdx.y * columns_per_block + warp; n < column_end; n += WARPS) {
            const T* w_row = expert_weight + static_cast<long long>(n) * in_features;
            float sums[ROWS];
            for (int r = 0; r < ROWS; ++r) sums[r] = 0.f;
#pragma unroll 8
            for (int k = lane * VECTOR; k < in_features; k += 32 * VECTOR) {
                float w[VECTOR];
                load_vector(w_row + k, w);
#pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    if (r < count) {
                        float x[VECTOR];
                        load_vector(rows_in + r * in_features + k, x);
                        for (int v = 0; v < VECTOR; ++v) sums[r] += w[v] * x[v];
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                for (int offset = 16; offset > 0; offset /= 2) sums[r] += __shfl_xor_sync(0xffffffffu, sums[r], offset);
            }
            if (lane == 0) {
                for (int r = 0; r < count; ++r) {
                    const int slot = first + r;
                    if (scatter) {
                        const long long row = scatter[slot];
                        out[row * out_features + n] = from_float<T>(sums[r] * row_weight[row]);
                    } else {
                        out[static_cast<long long>(slot) * out_features + n] = from_float<T>(sums[r]);
                    }
                }
            }
        }
    }
}

// moe_gather_rows and moe_scatter_rows, for the path that runs each expert's products on cuBLAS (many rows):
// slot s of `out` [slots, width] is row order[s] of `a`; and row order[s] of `out` is row_weight[order[s]]
// times slot s of `in`, as moe_grouped_product's scatter writes it. One thread per element (grid-stride).
extern "C" __global__ void moe_gather_rows(const T* __restrict__ a, const int* __restrict__ order, T* __restrict__ out,
                                           long long slots, int width)
{
    for_each_element(slots * width, [&](long long e) {
        out[e] = a[static_cast<long long>(order[e / width]) * width + e % width];
    });
}

extern "C" __global__ void moe_scatter_rows(const T* __restrict__ in, const int* __restrict__ order,
                                            const float* __restrict__ row_weight, T* __restrict__ out, long long slots, int width)
{
    for_each_element(slots * width, [&](long long e) {
        const long long row = order[e / width];
        out[row * width + e % width] = from_float<T>(row_weight[row] * to_float(in[e]));
    });
}
