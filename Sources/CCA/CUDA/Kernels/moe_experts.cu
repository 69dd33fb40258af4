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
#include "reduce.cuh"
#include "few_rows.cuh"

constexpr int THREADS = 256, WARPS = THREADS / 32, ROWS = 8;
constexpr int MAX_EXPERTS = 256;  // MixtureOfExperts.maximumDeviceExperts

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
                sums[r] = warp_sum(sums[r]);
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

// The few-row path (a decode step: at most FEW_ROWS rows, each routed to one expert or to none), without the
// grouping: the rows' inputs are few enough for every block to keep them all in shared memory, so the
// blocks split only the output columns (one column per warp at a time, over every SM) and each reads its
// columns' weights once per distinct expert of the step, the rows of that expert together.
//
// moe_few_rows_gate_up: hidden[r, j] = silu(gate_e[j] · x[r]) * (up_e[j] · x[r]) for each row r of expert
// e (gate rows first in [N, 2I, E]), float32 [rows, I]; rows of no expert are left unwritten.
//
// moe_few_rows_down: v = row_weight[r] * (down_e[n] · hidden[r]), 0 for a row of no expert. Without
// `stream`, out[r, n] = v (T). With it, v merges into ZAYA's float32 residual stream in place, as
// zaya_scale_norm does, stream = (v + b_h) * s_h + (stream + b_r) * s_r; and with `norm_weight` the block
// that finishes last (counted in `done`, one int that it resets to 0, so a CUDA graph replays it) writes
// the RMSNorm of the merged rows, normed = stream / sqrt(mean(stream^2) + eps) * w, in T: the next layer's
// input norm without a launch of its own. It reads the stream through L2 (__ldcg), since other blocks wrote
// the columns it did not. The staging and the warp's products are few_rows.cuh's.
extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_few_rows_gate_up(
    const T* __restrict__ x, const int* __restrict__ expert, const T* __restrict__ gate_up, float* __restrict__ hidden, int rows,
    int width, int intermediate)
{
    extern __shared__ float rows_in[];  // [rows][width]
    __shared__ int expert_of[FEW_ROWS];
    __shared__ unsigned rows_of[FEW_ROWS];
    stage_few_rows(x, expert, rows, width, rows_in, expert_of, rows_of);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int j = blockIdx.x * WARPS + warp; j < intermediate; j += gridDim.x * WARPS) {
        for (int first = 0; first < rows; ++first) {
            const unsigned group = rows_of[first];
            if (!group) continue;
            const T* gate_row = gate_up + (static_cast<long long>(expert_of[first]) * 2 * intermediate + j) * width;
            float sums[2][FEW_ROWS] = {};  // gate, up
            few_rows_dot<2>(gate_row, static_cast<long long>(intermediate) * width, rows_in, width, group, lane, sums);
            if (lane == 0) {
#pragma unroll
                for (int r = 0; r < FEW_ROWS; ++r) {  // unrolled, so that gate and up stay in registers
                    if (group >> r & 1u) hidden[r * intermediate + j] = sums[0][r] / (1.f + expf(-sums[0][r])) * sums[1][r];
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 2) moe_few_rows_down(
    const float* __restrict__ hidden, const int* __restrict__ expert, const float* __restrict__ row_weight,
    const T* __restrict__ down, int rows, int width, int intermediate, T* __restrict__ out, float* stream,
    const float* __restrict__ hidden_scale, const float* __restrict__ hidden_bias, const float* __restrict__ residual_scale,
    const float* __restrict__ residual_bias, const float* __restrict__ norm_weight, float epsilon, T* __restrict__ normed,
    unsigned* done)
{
    extern __shared__ float rows_in[];  // [rows][intermediate]
    __shared__ int expert_of[FEW_ROWS];
    __shared__ unsigned rows_of[FEW_ROWS];
    stage_few_rows(hidden, expert, rows, intermediate, rows_in, expert_of, rows_of);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int n = blockIdx.x * WARPS + warp; n < width; n += gridDim.x * WARPS) {
        float sums[1][FEW_ROWS] = {};
        for (int first = 0; first < rows; ++first) {
            const unsigned group = rows_of[first];
            if (!group) continue;
            few_rows_dot<1>(down + (static_cast<long long>(expert_of[first]) * width + n) * intermediate, 0, rows_in, intermediate,
                            group, lane, sums);
        }
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < FEW_ROWS; ++r) {
                if (r >= rows) break;
                const float value = expert_of[r] >= 0 ? sums[0][r] * row_weight[r] : 0.f;
                const long long e = static_cast<long long>(r) * width + n;
                if (stream) {
                    stream[e] = (value + hidden_bias[n]) * hidden_scale[n] + (stream[e] + residual_bias[n]) * residual_scale[n];
                } else {
                    out[e] = from_float<T>(value);
                }
            }
        }
    }
    if (!norm_weight || !last_block_done(done)) return;
    for (int r = 0; r < rows; ++r) {
        const float* row = stream + static_cast<long long>(r) * width;
        float squares = 0.f;
        for (int c = threadIdx.x; c < width; c += THREADS) {
            const float value = __ldcg(row + c);
            squares += value * value;
        }
        const float inverse = 1.f / sqrtf(block_sum(squares) / width + epsilon);
        for (int c = threadIdx.x; c < width; c += THREADS) {
            normed[static_cast<long long>(r) * width + c] = from_float<T>(__ldcg(row + c) * inverse * norm_weight[c]);
        }
    }
}
