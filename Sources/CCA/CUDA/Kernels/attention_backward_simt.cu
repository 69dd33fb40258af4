// attention_backward_simt.cu: the attention backward pass for float32 tensors on the CUDA cores (exact
// float arithmetic, for the float32 storage mode), the reference the tensor-core kernel is checked against.
//
// For the forward out = softmax(scale * q k^T) v of attention_simt.cu (causal or not, grouped KV heads, key
// padding mask), with its log-sum-exp `lse` and delta = rowsum(dO * O) (attention_backward_prepare.cu):
// P = exp(scale * q.k - lse) over the visible keys (0 elsewhere, and for rows with lse = -inf),
// dP = dO . v, dZ = P * (dP - delta); dq = scale * dZ k, dk = scale * dZ^T q, dv = P^T dO. Both kernels
// recompute P; nothing of size S^2 is stored. Same GQA packing as the forward: packed row r = t * g + i is
// position t and query head j * g + i of KV head j, so dk and dv of a KV head sum over its query heads.
//
// attention_backward_dq: grid (ceil(S*g / 32), Hkv, B), 8 warps of 4 packed rows. A block keeps its rows'
// q and dO in shared memory and walks key tiles of 32 (K and V rows padded to an odd stride); lane l takes
// key l of the tile for the warp's 4 rows, then the warp accumulates dq with the dZ values broadcast by
// shuffle, each lane owning channels lane, lane + 32, ...
// attention_backward_dkdv: grid (ceil(S / 32), Hkv, B), 8 warps of 4 keys. A block keeps its 32 keys' k and
// v in shared memory and walks tiles of 32 packed query rows from the first one that can see its keys;
// lane l takes row l of the tile for the warp's 4 keys, then accumulates dk and dv likewise.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv>.
#include "common.cuh"
#include "attention.cuh"
#include "documents.cuh"

constexpr int WARPS = 8, PER_WARP = 4, BLOCK = WARPS * PER_WARP, TILE = 32;
constexpr int DK_STRIDE = DK + 1 - DK % 2, DV_STRIDE = DV + 1 - DV % 2;
constexpr int DK_PER_LANE = (DK + 31) / 32, DV_PER_LANE = (DV + 31) / 32;

// The probability of a (row, key) pair from the score, or 0 when the key is not visible from the row.
__device__ __forceinline__ float probability(float score, float scale_log2, float lse_log2, bool visible) {
    return visible && lse_log2 != negative_infinity() ? exp2f(score * scale_log2 - lse_log2) : 0.f;
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) attention_backward_dq(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ d_out,            // [B, S, Hq, DV]
    const float* __restrict__ lse,              // [B, S, Hq]
    const float* __restrict__ delta,            // [B, S, Hq]
    float* __restrict__ dq,                     // [B, S, Hq, DK]
    const unsigned char* __restrict__ key_valid, // [B, S] or null
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    extern __shared__ float shared[];
    float* q_tile = shared;                        // [BLOCK][DK]
    float* do_tile = q_tile + BLOCK * DK;          // [BLOCK][DV]
    float* k_tile = do_tile + BLOCK * DV;          // [TILE][DK_STRIDE]
    float* v_tile = k_tile + TILE * DK_STRIDE;     // [TILE][DV_STRIDE]

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int row0 = (gridDim.x - 1 - blockIdx.x) * BLOCK;
    const int kv_head = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const float scale_log2 = scale * LOG2E;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };

    for (int index = threadIdx.x; index < BLOCK * DK; index += blockDim.x) {
        const int packed = row0 + index / DK;
        q_tile[index] = packed < packed_rows ? q[row_index(packed) * DK + index % DK] : 0.f;
    }
    for (int index = threadIdx.x; index < BLOCK * DV; index += blockDim.x) {
        const int packed = row0 + index / DV;
        do_tile[index] = packed < packed_rows ? d_out[row_index(packed) * DV + index % DV] : 0.f;
    }
    int position[PER_WARP], first[PER_WARP];
    float lse_log2[PER_WARP], row_delta[PER_WARP];
#pragma unroll
    for (int i = 0; i < PER_WARP; ++i) {
        const int packed = row0 + warp * PER_WARP + i;
        const bool inside = packed < packed_rows;
        position[i] = !inside ? -1 : causal ? packed / group : seq_len - 1;
        first[i] = inside ? document_start(row_positions, position[i]) : 0;
        lse_log2[i] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
        row_delta[i] = inside ? delta[row_index(packed)] : 0.f;
    }
    const BlockKeys keys = block_keys<TILE>(row_positions, row0, BLOCK, packed_rows, group, seq_len, causal);
    const int key_begin = keys.first_tile * TILE, key_end = keys.end;

    float acc[PER_WARP][DK_PER_LANE] = {};
    const float* q_warp = q_tile + warp * PER_WARP * DK;
    const float* do_warp = do_tile + warp * PER_WARP * DV;
    for (int key0 = key_begin; key0 < key_end; key0 += TILE) {
        __syncthreads();
        for (int index = threadIdx.x; index < TILE * DK; index += blockDim.x) {
            const int s = key0 + index / DK;
            k_tile[(index / DK) * DK_STRIDE + index % DK] = s < seq_len ? k[((sequence + s) * kv_heads + kv_head) * DK + index % DK] : 0.f;
        }
        for (int index = threadIdx.x; index < TILE * DV; index += blockDim.x) {
            const int s = key0 + index / DV;
            v_tile[(index / DV) * DV_STRIDE + index % DV] = s < seq_len ? v[((sequence + s) * kv_heads + kv_head) * DV + index % DV] : 0.f;
        }
        __syncthreads();
        const int key = key0 + lane;
        const bool key_visible = key < seq_len && (key_valid == nullptr || key_valid[sequence + key]);
        float score[PER_WARP] = {}, d_prob[PER_WARP] = {};
        for (int c = 0; c < DK; ++c) {
            const float kc = k_tile[lane * DK_STRIDE + c];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) score[i] += q_warp[i * DK + c] * kc;
        }
        for (int c = 0; c < DV; ++c) {
            const float vc = v_tile[lane * DV_STRIDE + c];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) d_prob[i] += do_warp[i * DV + c] * vc;
        }
        float d_score[PER_WARP];
#pragma unroll
        for (int i = 0; i < PER_WARP; ++i) {
            const float p = probability(score[i], scale_log2, lse_log2[i], key_visible && key <= position[i] && key >= first[i]);
            d_score[i] = p * (d_prob[i] - row_delta[i]);
        }
        for (int j = 0; j < TILE; ++j) {
            float dz[PER_WARP];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) dz[i] = __shfl_sync(0xffffffffu, d_score[i], j);
#pragma unroll
            for (int x = 0; x < DK_PER_LANE; ++x) {
                const int c = lane + 32 * x;
                if (c >= DK) break;
                const float kc = k_tile[j * DK_STRIDE + c];
#pragma unroll
                for (int i = 0; i < PER_WARP; ++i) acc[i][x] += dz[i] * kc;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < PER_WARP; ++i) {
        const int packed = row0 + warp * PER_WARP + i;
        if (packed >= packed_rows) continue;
#pragma unroll
        for (int x = 0; x < DK_PER_LANE; ++x) {
            const int c = lane + 32 * x;
            if (c < DK) dq[row_index(packed) * DK + c] = acc[i][x] * scale;
        }
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) attention_backward_dkdv(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ d_out, const float* __restrict__ lse, const float* __restrict__ delta,
    float* __restrict__ dk,                     // [B, S, Hkv, DK]
    float* __restrict__ dv,                     // [B, S, Hkv, DV]
    const unsigned char* __restrict__ key_valid,
    const int* __restrict__ positions,
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    extern __shared__ float shared[];
    float* k_tile = shared;                        // [BLOCK][DK]
    float* v_tile = k_tile + BLOCK * DK;           // [BLOCK][DV]
    float* q_tile = v_tile + BLOCK * DV;           // [TILE][DK_STRIDE]
    float* do_tile = q_tile + TILE * DK_STRIDE;    // [TILE][DV_STRIDE]
    float* row_lse = do_tile + TILE * DV_STRIDE;   // [TILE], log2 domain
    float* row_delta = row_lse + TILE;             // [TILE]
    int* row_position = reinterpret_cast<int*>(row_delta + TILE);  // [TILE], -1 outside
    int* row_first = row_position + TILE;          // [TILE], the first key each row sees

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.x * BLOCK;
    const int kv_head = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const float scale_log2 = scale * LOG2E;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };

    for (int index = threadIdx.x; index < BLOCK * DK; index += blockDim.x) {
        const int s = key0 + index / DK;
        k_tile[index] = s < seq_len ? k[((sequence + s) * kv_heads + kv_head) * DK + index % DK] : 0.f;
    }
    for (int index = threadIdx.x; index < BLOCK * DV; index += blockDim.x) {
        const int s = key0 + index / DV;
        v_tile[index] = s < seq_len ? v[((sequence + s) * kv_heads + kv_head) * DV + index % DV] : 0.f;
    }
    bool key_visible[PER_WARP];
#pragma unroll
    for (int i = 0; i < PER_WARP; ++i) {
        const int s = key0 + warp * PER_WARP + i;
        key_visible[i] = s < seq_len && (key_valid == nullptr || key_valid[sequence + s]);
    }
    float dk_acc[PER_WARP][DK_PER_LANE] = {}, dv_acc[PER_WARP][DV_PER_LANE] = {};
    const float* k_warp = k_tile + warp * PER_WARP * DK;
    const float* v_warp = v_tile + warp * PER_WARP * DV;
    const int first_row = causal ? min(key0 * group, packed_rows) / TILE * TILE : 0;
    // Rows past the document of the block's last key see none of its keys.
    const int rows_end = row_positions == nullptr ? packed_rows
        : document_end(row_positions, min(key0 + BLOCK, seq_len) - 1, seq_len) * group;
    for (int tile0 = first_row; tile0 < rows_end; tile0 += TILE) {
        __syncthreads();
        for (int index = threadIdx.x; index < TILE * DK; index += blockDim.x) {
            const int packed = tile0 + index / DK;
            q_tile[(index / DK) * DK_STRIDE + index % DK] = packed < packed_rows ? q[row_index(packed) * DK + index % DK] : 0.f;
        }
        for (int index = threadIdx.x; index < TILE * DV; index += blockDim.x) {
            const int packed = tile0 + index / DV;
            do_tile[(index / DV) * DV_STRIDE + index % DV] = packed < packed_rows ? d_out[row_index(packed) * DV + index % DV] : 0.f;
        }
        if (threadIdx.x < TILE) {
            const int packed = tile0 + threadIdx.x;
            const bool inside = packed < packed_rows;
            row_lse[threadIdx.x] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
            row_delta[threadIdx.x] = inside ? delta[row_index(packed)] : 0.f;
            row_position[threadIdx.x] = !inside ? -1 : causal ? packed / group : seq_len - 1;
            row_first[threadIdx.x] = inside ? document_start(row_positions, row_position[threadIdx.x]) : 0;
        }
        __syncthreads();
        float score[PER_WARP] = {}, d_prob[PER_WARP] = {};
        for (int c = 0; c < DK; ++c) {
            const float qc = q_tile[lane * DK_STRIDE + c];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) score[i] += qc * k_warp[i * DK + c];
        }
        for (int c = 0; c < DV; ++c) {
            const float dc = do_tile[lane * DV_STRIDE + c];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) d_prob[i] += dc * v_warp[i * DV + c];
        }
        float prob[PER_WARP], d_score[PER_WARP];
#pragma unroll
        for (int i = 0; i < PER_WARP; ++i) {
            const int key = key0 + warp * PER_WARP + i;
            prob[i] = probability(score[i], scale_log2, row_lse[lane], key_visible[i] && key <= row_position[lane] && key >= row_first[lane]);
            d_score[i] = prob[i] * (d_prob[i] - row_delta[lane]);
        }
        for (int j = 0; j < TILE; ++j) {
            float p[PER_WARP], dz[PER_WARP];
#pragma unroll
            for (int i = 0; i < PER_WARP; ++i) {
                p[i] = __shfl_sync(0xffffffffu, prob[i], j);
                dz[i] = __shfl_sync(0xffffffffu, d_score[i], j);
            }
#pragma unroll
            for (int x = 0; x < DV_PER_LANE; ++x) {
                const int c = lane + 32 * x;
                if (c >= DV) break;
                const float dc = do_tile[j * DV_STRIDE + c];
#pragma unroll
                for (int i = 0; i < PER_WARP; ++i) dv_acc[i][x] += p[i] * dc;
            }
#pragma unroll
            for (int x = 0; x < DK_PER_LANE; ++x) {
                const int c = lane + 32 * x;
                if (c >= DK) break;
                const float qc = q_tile[j * DK_STRIDE + c];
#pragma unroll
                for (int i = 0; i < PER_WARP; ++i) dk_acc[i][x] += dz[i] * qc;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < PER_WARP; ++i) {
        const int s = key0 + warp * PER_WARP + i;
        if (s >= seq_len) continue;
        const long long key_row = (sequence + s) * kv_heads + kv_head;
#pragma unroll
        for (int x = 0; x < DK_PER_LANE; ++x) {
            const int c = lane + 32 * x;
            if (c < DK) dk[key_row * DK + c] = dk_acc[i][x] * scale;
        }
#pragma unroll
        for (int x = 0; x < DV_PER_LANE; ++x) {
            const int c = lane + 32 * x;
            if (c < DV) dv[key_row * DV + c] = dv_acc[i][x];
        }
    }
}
