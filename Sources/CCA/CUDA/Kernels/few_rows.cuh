// few_rows.cuh (include reduce.cuh first): matrix-vector products for a step of at most FEW_ROWS rows (a decode step), shared by the
// few-row expert kernels (moe_experts.cu) and the few-row router (zaya_router.cu). Every block keeps all the
// rows' inputs in shared memory as float32, so the blocks split only the output columns, one per warp at a
// time, and each weight row is read once per group of rows, its lanes reading VECTOR consecutive weights
// each (16-byte loads of bf16, two of float32: the depth must be a multiple of VECTOR).
#pragma once

constexpr int FEW_ROWS = 8;  // MixtureOfExperts.maximumFewRows, ZayaRouter's few-row path
constexpr int VECTOR = 8;

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

__device__ __forceinline__ float load_through_l2(const float* p) { return __ldcg(p); }
__device__ __forceinline__ float load_through_l2(const bf16* p) { return to_float(*p); }

// Copies the rows of `a` [rows, width] into `rows_in` as float32 (float32 sources through L2, so that a block
// may read what other blocks of the same launch wrote before it counted itself done). With `expert`, writes
// each row's expert into `expert_of` and, for the first row of each expert, the mask of that expert's rows
// into `rows_of` (0 for the others, and for rows of no expert, -1); without, every row is one group (row 0's).
template <typename Source>
__device__ void stage_few_rows(const Source* __restrict__ a, const int* __restrict__ expert, int rows, int width,
                               float* rows_in, int* expert_of, unsigned* rows_of)
{
    for (int k = threadIdx.x; k < rows * width; k += blockDim.x) rows_in[k] = load_through_l2(a + k);
    if (threadIdx.x < rows) expert_of[threadIdx.x] = expert ? expert[threadIdx.x] : 0;
    __syncthreads();
    if (threadIdx.x < rows) {
        const int mine = expert_of[threadIdx.x];
        bool first = mine >= 0;
        unsigned mask = 0;
        for (int r = 0; r < rows; ++r) {
            if (expert_of[r] != mine) continue;
            if (r < static_cast<int>(threadIdx.x)) first = false;
            mask |= 1u << r;
        }
        rows_of[threadIdx.x] = first ? mask : 0u;
    }
    __syncthreads();
}

// The warp's sums of the weight rows `weight_row + m * stride` (m < MATRICES) · rows_in[r] for the rows r
// in `rows` (the same for every lane), reduced over the warp: every lane ends with the totals. The
// matrices' loads of one step are in flight together (gate and up: one pass of latency, not two).
template <int MATRICES, typename Weight>
__device__ __forceinline__ void few_rows_dot(const Weight* __restrict__ weight_row, long long stride, const float* rows_in,
                                             int width, unsigned rows, int lane, float (&sums)[MATRICES][FEW_ROWS])
{
#pragma unroll 4
    for (int k = lane * VECTOR; k < width; k += 32 * VECTOR) {
        float w[MATRICES][VECTOR];
#pragma unroll
        for (int m = 0; m < MATRICES; ++m) load_vector(weight_row + m * stride + k, w[m]);
#pragma unroll
        for (int r = 0; r < FEW_ROWS; ++r) {
            if (rows >> r & 1u) {
                float x[VECTOR];
                load_vector(rows_in + r * width + k, x);
#pragma unroll
                for (int m = 0; m < MATRICES; ++m) {
                    for (int v = 0; v < VECTOR; ++v) sums[m][r] += w[m][v] * x[v];
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < MATRICES; ++m) {
#pragma unroll
        for (int r = 0; r < FEW_ROWS; ++r) {
            if (rows >> r & 1u) sums[m][r] = warp_sum(sums[m][r]);
        }
    }
}

// Counts the calling block done in `done` (one int, 0 between launches) after its global writes are visible;
// true in the block that finishes last, which sees every block's writes and resets the counter for the next
// launch (a CUDA graph replays it). Every thread of the block must call it.
__device__ __forceinline__ bool last_block_done(unsigned* done)
{
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(done, 1u) == gridDim.x - 1;
        if (last) *done = 0u;
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}
