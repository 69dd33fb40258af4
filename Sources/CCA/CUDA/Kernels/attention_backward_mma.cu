// attention_backward_mma.cu: the attention backward pass for bfloat16 tensors on the tensor cores (mma.sync
// m16n8k16, bf16 inputs, float accumulation): causal block skipping, grouped KV heads, an optional key
// padding mask, any head dims up to 256.
//
// For out = softmax(scale * q k^T) v (attention_mma.cu / attention_wgmma.cu), its log-sum-exp `lse` and
// delta = rowsum(dO * O) (attention_backward_prepare.cu): P = exp(scale * q.k - lse) on visible keys (0 on the
// rest, and for rows whose lse is -inf), dP = dO v^T, dZ = P * (dP - delta); dv = P^T dO, dk = scale * dZ^T q,
// dq = scale * dZ k. P is recomputed from lse tile by tile; nothing of size S^2 is ever stored. Two kernels,
// so that neither needs atomics: one keeps keys in place and walks the queries (dk, dv), the other keeps
// queries in place and walks the keys (dq); each recomputes P and dP.
//
// GQA packing as in the forward: packed row r = t * g + i is position t and query head j * g + i of KV head
// j, so dk and dv of a KV head sum over all the query heads that share it.
//
// attention_backward_dkdv: grid (ceil(S / 64), Hkv, B), 4 warps of 16 keys. K and V tiles stay in shared
// memory; tiles of 64 packed query rows (q, dO, and the rows' lse, delta and positions) stream through two
// shared-memory stages, the next fetched with cp.async while the current one is used, from the first tile
// whose positions can see the block's keys (causal) to the end. Per tile a warp computes S^T = K q^T and
// dP^T = V dO^T for its 16 keys (A from K and V by ldmatrix, B from the tile), forms P^T and dZ^T in the
// accumulators, and accumulates dv += P^T dO and dk += dZ^T q (the accumulators of two adjacent row tiles
// are one A fragment; dO and q by ldmatrix.trans).
// attention_backward_dq: grid (ceil(S*g / 64), Hkv, B), 4 warps of 16 packed rows, heaviest row blocks
// first. Each warp keeps its rows' q and dO as A fragments in registers and walks key tiles of 64 (K and V
// double-buffered with cp.async, as in the forward): S = q K^T and dP = dO V^T, then P and dZ, then
// dq += dZ K (dZ from the accumulators, K by ldmatrix.trans).
// Rows are padded by 16 bytes so that ldmatrix reads hit distinct banks; head dims that are not a multiple
// of 16 are zero-padded.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv> (both at most 256).
#include "common.cuh"
#include "mma.cuh"
#include "attention.cuh"
#include "documents.cuh"

constexpr int BLOCK = 64, THREADS = 128;
constexpr int QK_STRIDE = DK_PADDED + 8, V_STRIDE = DV_PADDED + 8;

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dkdv(
    const bf16* __restrict__ q,                 // [B, S, Hq, DK]
    const bf16* __restrict__ k,                 // [B, S, Hkv, DK]
    const bf16* __restrict__ v,                 // [B, S, Hkv, DV]
    const bf16* __restrict__ d_out,             // [B, S, Hq, DV]
    const float* __restrict__ lse,              // [B, S, Hq], natural log
    const float* __restrict__ delta,            // [B, S, Hq]
    bf16* __restrict__ dk,                      // [B, S, Hkv, DK]
    bf16* __restrict__ dv,                      // [B, S, Hkv, DV]
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    constexpr int STAGE = BLOCK * (QK_STRIDE + V_STRIDE) + 4 * BLOCK * 2;  // q, dO, then lse, delta, first and last keys (as shorts)
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* k_tile = shared;                        // [BLOCK][QK_STRIDE]
    unsigned short* v_tile = k_tile + BLOCK * QK_STRIDE;    // [BLOCK][V_STRIDE]
    unsigned short* stages = v_tile + BLOCK * V_STRIDE;     // 2 x STAGE

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.x * BLOCK, kv_head = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad_row = lane / 4, quad_column = lane % 4;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const float scale_log2 = scale * LOG2E;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };

    auto key_row = [&](const bf16* base, int width) {
        return [=](int row) -> const bf16* {
            const int s = key0 + row;
            return s < seq_len ? base + ((sequence + s) * kv_heads + kv_head) * width : nullptr;
        };
    };
    load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(k_tile, BLOCK, k, key_row(k, DK));
    load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(v_tile, BLOCK, v, key_row(v, DV));
    commit_loads();

    // Starts fetching the query tile at packed row `tile0` into `stage`: q and dO by cp.async, the rows' lse
    // (log2 domain), delta, and the first and last keys each row sees (last -1 outside) by plain stores.
    auto fetch = [&](int tile0, unsigned short* stage) {
        auto query_row = [&](const bf16* base, int width) {
            return [=](int row) -> const bf16* {
                const int packed = tile0 + row;
                return packed < packed_rows ? base + row_index(packed) * width : nullptr;
            };
        };
        load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(stage, BLOCK, q, query_row(q, DK));
        load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(stage + BLOCK * QK_STRIDE, BLOCK, d_out, query_row(d_out, DV));
        commit_loads();
        float* row_lse = reinterpret_cast<float*>(stage + BLOCK * (QK_STRIDE + V_STRIDE));
        if (threadIdx.x < BLOCK) {
            const int packed = tile0 + threadIdx.x;
            const bool inside = packed < packed_rows;
            row_lse[threadIdx.x] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
            row_lse[BLOCK + threadIdx.x] = inside ? delta[row_index(packed)] : 0.f;
            const int position = !inside ? -1 : causal ? packed / group : seq_len - 1;
            // The first and last key the row sees side by side, so that one 8-byte load reads both.
            reinterpret_cast<int2*>(row_lse + 2 * BLOCK)[threadIdx.x] =
                make_int2(inside ? document_start(row_positions, position) : 0, position);
        }
    };

    // This thread's two keys (accumulator rows quad_row and quad_row + 8 of its warp's 16).
    int key[2];
    bool key_visible[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        key[i] = key0 + warp * 16 + quad_row + 8 * i;
        key_visible[i] = key[i] < seq_len && (key_valid == nullptr || key_valid[sequence + key[i]]);
    }

    float dk_acc[DK_PADDED / 8][4] = {}, dv_acc[DV_PADDED / 8][4] = {};
    const int first_row = causal ? min(key0 * group, packed_rows) / BLOCK * BLOCK : 0;
    // Rows past the document of the block's last key see none of its keys.
    const int rows_end = row_positions == nullptr ? packed_rows
        : document_end(row_positions, min(key0 + BLOCK, seq_len) - 1, seq_len) * group;
    const int tiles = (rows_end - first_row + BLOCK - 1) / BLOCK;
    if (tiles > 0) fetch(first_row, stages);
    for (int tile = 0; tile < tiles; ++tile) {
        unsigned short* stage = stages + (tile % 2) * STAGE;
        if (tile + 1 < tiles) {
            fetch(first_row + (tile + 1) * BLOCK, stages + ((tile + 1) % 2) * STAGE);
            wait_loads<1>();
        } else {
            wait_loads<0>();
        }
        __syncthreads();
        const unsigned short* q_tile = stage;
        const unsigned short* do_tile = stage + BLOCK * QK_STRIDE;
        const float* row_lse = reinterpret_cast<const float*>(stage + BLOCK * (QK_STRIDE + V_STRIDE));
        const float* row_delta = row_lse + BLOCK;
        const int2* row_keys = reinterpret_cast<const int2*>(row_lse + 2 * BLOCK);

        // S^T = K q^T and dP^T = V dO^T for this warp's 16 keys and the tile's 64 rows.
        float score[BLOCK / 8][4] = {}, d_prob[BLOCK / 8][4] = {};
        warp_mma_abt<DK_PADDED, BLOCK>(score, k_tile + warp * 16 * QK_STRIDE, QK_STRIDE, q_tile, QK_STRIDE, lane);
        warp_mma_abt<DV_PADDED, BLOCK>(d_prob, v_tile + warp * 16 * V_STRIDE, V_STRIDE, do_tile, V_STRIDE, lane);
        // P^T and dZ^T in place; element e of tile nt is key key[e / 2] and row nt * 8 + 2 * quad_column + e % 2.
#pragma unroll
        for (int nt = 0; nt < BLOCK / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = nt * 8 + 2 * quad_column + e % 2;
                const int2 keys = row_keys[row];
                const bool visible = key_visible[e / 2] && key[e / 2] <= keys.y && key[e / 2] >= keys.x && row_lse[row] != negative_infinity();
                const float p = visible ? exp2f(score[nt][e] * scale_log2 - row_lse[row]) : 0.f;
                score[nt][e] = p;
                d_prob[nt][e] = p * (d_prob[nt][e] - row_delta[row]);
            }
        }
        // dv += P^T dO and dk += dZ^T q.
        warp_mma_accumulators_b<BLOCK, DV_PADDED>(dv_acc, score, do_tile, V_STRIDE, lane);
        warp_mma_accumulators_b<BLOCK, DK_PADDED>(dk_acc, d_prob, q_tile, QK_STRIDE, lane);
        __syncthreads();  // every warp is done with this stage before it is refilled
    }

    bf16* dk_rows[2], *dv_rows[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const long long row = (sequence + key[i]) * kv_heads + kv_head;
        dk_rows[i] = key[i] < seq_len ? dk + row * DK : nullptr;
        dv_rows[i] = key[i] < seq_len ? dv + row * DV : nullptr;
    }
    store_accumulators<DK_PADDED, DK>(dk_acc, dk_rows, {scale, scale}, lane);
    store_accumulators<DV_PADDED, DV>(dv_acc, dv_rows, {1.f, 1.f}, lane);
}

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dq(
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
    const bf16* __restrict__ d_out, const float* __restrict__ lse, const float* __restrict__ delta,
    bf16* __restrict__ dq,                      // [B, S, Hq, DK]
    const unsigned char* __restrict__ key_valid,
    const int* __restrict__ positions,
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    constexpr int STAGE = BLOCK * (QK_STRIDE + V_STRIDE);
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* q_tile = shared;                        // [BLOCK][QK_STRIDE]
    unsigned short* do_tile = q_tile + BLOCK * QK_STRIDE;   // [BLOCK][V_STRIDE]
    unsigned short* stages = do_tile + BLOCK * V_STRIDE;    // 2 x (K [BLOCK][QK_STRIDE], V [BLOCK][V_STRIDE])

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int row0 = (gridDim.x - 1 - blockIdx.x) * BLOCK;
    const int kv_head = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad_row = lane / 4, quad_column = lane % 4;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const float scale_log2 = scale * LOG2E;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };

    auto query_row = [&](const bf16* base, int width) {
        return [=](int row) -> const bf16* {
            const int packed = row0 + row;
            return packed < packed_rows ? base + row_index(packed) * width : nullptr;
        };
    };
    load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(q_tile, BLOCK, q, query_row(q, DK));
    load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(do_tile, BLOCK, d_out, query_row(d_out, DV));
    commit_loads();

    // This thread's two rows (quad_row and quad_row + 8 of its warp's 16): position (-1 outside), lse, delta.
    int position[2], first[2];
    float row_lse[2], row_delta[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        const bool inside = packed < packed_rows;
        position[i] = !inside ? -1 : causal ? packed / group : seq_len - 1;
        first[i] = inside ? document_start(row_positions, position[i]) : 0;
        row_lse[i] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
        row_delta[i] = inside ? delta[row_index(packed)] : 0.f;
    }
    const BlockKeys keys = block_keys<BLOCK>(row_positions, row0, BLOCK, packed_rows, group, seq_len, causal);
    const int first_tile = keys.first_tile, tiles = keys.tiles;

    auto fetch = [&](int tile) {
        unsigned short* k_stage = stages + (tile % 2) * STAGE;
        auto key_row = [&](const bf16* base, int width) {
            return [=](int row) -> const bf16* {
                const int s = (first_tile + tile) * BLOCK + row;
                return s < seq_len ? base + ((sequence + s) * kv_heads + kv_head) * width : nullptr;
            };
        };
        load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(k_stage, BLOCK, k, key_row(k, DK));
        load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(k_stage + BLOCK * QK_STRIDE, BLOCK, v, key_row(v, DV));
        commit_loads();
    };

    // q and dO have landed once only the first K/V tile may still be in flight.
    if (tiles > 0) {
        fetch(0);
        wait_loads<1>();
    } else {
        wait_loads<0>();
    }
    __syncthreads();
    unsigned q_fragment[DK_PADDED / 16][4], do_fragment[DV_PADDED / 16][4];
    warp_load_fragments<DK_PADDED>(q_fragment, q_tile + warp * 16 * QK_STRIDE, QK_STRIDE, lane);
    warp_load_fragments<DV_PADDED>(do_fragment, do_tile + warp * 16 * V_STRIDE, V_STRIDE, lane);

    float dq_acc[DK_PADDED / 8][4] = {};
    for (int tile = 0; tile < tiles; ++tile) {
        if (tile + 1 < tiles) {
            fetch(tile + 1);
            wait_loads<1>();
        } else {
            wait_loads<0>();
        }
        __syncthreads();
        const unsigned short* k_tile = stages + (tile % 2) * STAGE;
        const unsigned short* v_tile = k_tile + BLOCK * QK_STRIDE;
        const int key0 = (first_tile + tile) * BLOCK;

        // S = q K^T and dP = dO V^T for this warp's 16 rows and the tile's 64 keys.
        float score[BLOCK / 8][4] = {}, d_prob[BLOCK / 8][4] = {};
        warp_mma_fragments_bt<DK_PADDED, BLOCK>(score, q_fragment, k_tile, QK_STRIDE, lane);
        warp_mma_fragments_bt<DV_PADDED, BLOCK>(d_prob, do_fragment, v_tile, V_STRIDE, lane);
        // dZ in place of dP; element e of tile nt is row quad_row + 8 * (e / 2), key key0 + nt * 8 + 2 * quad_column + e % 2.
#pragma unroll
        for (int nt = 0; nt < BLOCK / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = key0 + nt * 8 + 2 * quad_column + e % 2, i = e / 2;
                const bool visible = key < seq_len && key <= position[i] && key >= first[i] && row_lse[i] != negative_infinity()
                    && (key_valid == nullptr || key_valid[sequence + key]);
                const float p = visible ? exp2f(score[nt][e] * scale_log2 - row_lse[i]) : 0.f;
                d_prob[nt][e] = p * (d_prob[nt][e] - row_delta[i]);
            }
        }
        // dq += dZ K.
        warp_mma_accumulators_b<BLOCK, DK_PADDED>(dq_acc, d_prob, k_tile, QK_STRIDE, lane);
        __syncthreads();  // every warp is done with this stage before it is refilled
    }

    bf16* dq_rows[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        dq_rows[i] = packed < packed_rows ? dq + row_index(packed) * DK : nullptr;
    }
    store_accumulators<DK_PADDED, DK>(dq_acc, dq_rows, {scale, scale}, lane);
}
