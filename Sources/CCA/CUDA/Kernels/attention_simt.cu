// attention_simt.cu: flash attention for float32 tensors on the CUDA cores (exact float arithmetic, for the
// float32 storage mode, whose tolerance the tensor cores' reduced precision would not meet).
//
// Computes the same function as attention_mma.cu: softmax attention, causal or not, with grouped KV heads, an
// optional key padding mask, zeros for rows that see no key, the optional log-sum-exp output, and the same GQA packing (packed row
// r = t * g + i is position t, query head j * g + i of KV head j).
//
// Tiling: grid (ceil(S*g / 32), Hkv, B), 8 warps; a block owns 32 packed rows (4 per warp) and walks key
// tiles of 32 up to the last position its rows can see. Q, K and V tiles live in shared memory (K rows
// padded to an odd stride, so that lane l reading key l hits bank l). For each tile a lane computes the
// score of key `lane` for the warp's 4 rows, the warp updates the online softmax with shuffles, and then
// each lane accumulates output channels lane, lane + 32, ... with the probabilities broadcast by shuffle.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv>.
#include "common.cuh"
#include "attention.cuh"
#include "documents.cuh"

constexpr int WARPS = 8, ROWS_PER_WARP = 4, BLOCK_M = WARPS * ROWS_PER_WARP, BLOCK_N = 32;
constexpr int K_STRIDE = DK + 1 - DK % 2, V_PER_LANE = (DV + 31) / 32;

__device__ __forceinline__ float warp_max(float x) {
    for (int offset = 16; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) attention_forward(
    const float* __restrict__ q,                // [B, S, Hq, DK]
    const float* __restrict__ k,                // [B, S, Hkv, DK]
    const float* __restrict__ v,                // [B, S, Hkv, DV]
    float* __restrict__ out,                    // [B, S, Hq, DV]
    float* __restrict__ lse,                    // [B, S, Hq] or null
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale_log2, int causal)
{
    extern __shared__ float shared[];
    float* q_tile = shared;                     // [BLOCK_M][DK]
    float* k_tile = q_tile + BLOCK_M * DK;      // [BLOCK_N][K_STRIDE]
    float* v_tile = k_tile + BLOCK_N * K_STRIDE; // [BLOCK_N][DV]

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int row0 = (gridDim.x - 1 - blockIdx.x) * BLOCK_M;
    const int kv_head = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;

    for (int index = threadIdx.x; index < BLOCK_M * DK; index += blockDim.x) {
        const int packed = row0 + index / DK, c = index % DK;
        q_tile[index] = packed < packed_rows
            ? q[((sequence + packed / group) * q_heads + kv_head * group + packed % group) * DK + c] : 0.f;
    }
    // Row i sees keys first[i] ..< position[i] + 1 (none at position -1).
    int position[ROWS_PER_WARP], first[ROWS_PER_WARP];
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; ++i) {
        const int packed = row0 + warp * ROWS_PER_WARP + i;
        position[i] = packed >= packed_rows ? -1 : causal ? packed / group : seq_len - 1;
        first[i] = position[i] < 0 ? 0 : document_start(row_positions, position[i]);
    }
    const BlockKeys keys = block_keys<BLOCK_N>(row_positions, row0, BLOCK_M, packed_rows, group, seq_len, causal);
    const int key_begin = keys.first_tile * BLOCK_N, key_end = keys.end;

    float acc[ROWS_PER_WARP][V_PER_LANE] = {};
    float row_max[ROWS_PER_WARP], row_sum[ROWS_PER_WARP];
#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; ++i) row_max[i] = negative_infinity(), row_sum[i] = 0.f;
    const float* q_warp = q_tile + warp * ROWS_PER_WARP * DK;

    for (int key0 = key_begin; key0 < key_end; key0 += BLOCK_N) {
        __syncthreads();
        for (int index = threadIdx.x; index < BLOCK_N * DK; index += blockDim.x) {
            const int s = key0 + index / DK, c = index % DK;
            k_tile[(index / DK) * K_STRIDE + c] = s < seq_len ? k[((sequence + s) * kv_heads + kv_head) * DK + c] : 0.f;
        }
        for (int index = threadIdx.x; index < BLOCK_N * DV; index += blockDim.x) {
            const int s = key0 + index / DV, c = index % DV;
            v_tile[index] = s < seq_len ? v[((sequence + s) * kv_heads + kv_head) * DV + c] : 0.f;
        }
        __syncthreads();

        float score[ROWS_PER_WARP] = {};
#pragma unroll 8
        for (int c = 0; c < DK; ++c) {
            const float key_value = k_tile[lane * K_STRIDE + c];
#pragma unroll
            for (int i = 0; i < ROWS_PER_WARP; ++i) score[i] += q_warp[i * DK + c] * key_value;
        }
        const int key = key0 + lane;
#pragma unroll
        for (int i = 0; i < ROWS_PER_WARP; ++i) {
            const bool visible = key <= position[i] && key >= first[i] && (key_valid == nullptr || key_valid[sequence + key]);
            const float s = visible ? score[i] * scale_log2 : negative_infinity();
            const float new_max = fmaxf(row_max[i], warp_max(s));
            // While a row has seen no visible key its max is -inf; subtracting 0 keeps exp2 at 0, not NaN.
            const float base = new_max == negative_infinity() ? 0.f : new_max;
            const float rescale = exp2f(row_max[i] - base);
            row_max[i] = new_max;
            score[i] = exp2f(s - base);  // from here on the probability
            row_sum[i] = row_sum[i] * rescale + warp_sum(score[i]);
#pragma unroll
            for (int x = 0; x < V_PER_LANE; ++x) acc[i][x] *= rescale;
        }
        for (int j = 0; j < BLOCK_N; ++j) {
            float weight[ROWS_PER_WARP];
#pragma unroll
            for (int i = 0; i < ROWS_PER_WARP; ++i) weight[i] = __shfl_sync(0xffffffffu, score[i], j);
#pragma unroll
            for (int x = 0; x < V_PER_LANE; ++x) {
                const int c = lane + 32 * x;
                if (c >= DV) break;
                const float value = v_tile[j * DV + c];
#pragma unroll
                for (int i = 0; i < ROWS_PER_WARP; ++i) acc[i][x] += weight[i] * value;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < ROWS_PER_WARP; ++i) {
        const int packed = row0 + warp * ROWS_PER_WARP + i;
        if (packed >= packed_rows) continue;
        const float inverse = row_sum[i] > 0.f ? 1.f / row_sum[i] : 0.f;
        const long long row = (sequence + packed / group) * q_heads + kv_head * group + packed % group;
        if (lse != nullptr && lane == 0) {
            lse[row] = row_sum[i] > 0.f ? (row_max[i] + log2f(row_sum[i])) * 0.6931471805599453f : negative_infinity();
        }
        float* destination = out + row * DV;
#pragma unroll
        for (int x = 0; x < V_PER_LANE; ++x) {
            const int c = lane + 32 * x;
            if (c < DV) destination[c] = acc[i][x] * inverse;
        }
    }
}
