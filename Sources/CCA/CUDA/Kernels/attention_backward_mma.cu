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

#ifndef HEAD_DIM_QK
#define HEAD_DIM_QK 128
#endif
#ifndef HEAD_DIM_V
#define HEAD_DIM_V HEAD_DIM_QK
#endif

constexpr int DK = HEAD_DIM_QK, DV = HEAD_DIM_V;
constexpr int DK_PADDED = (DK + 15) / 16 * 16, DV_PADDED = (DV + 15) / 16 * 16;
constexpr int BLOCK = 64, THREADS = 128;
constexpr int QK_STRIDE = DK_PADDED + 8, V_STRIDE = DV_PADDED + 8;
constexpr float LOG2E = 1.4426950408889634f;
static_assert(DK_PADDED <= 256 && DV_PADDED <= 256, "head dims above 256 are not supported");

// The elements of a pair of m16n8 accumulator tiles as one m16k16 A fragment (bf16 pairs).
__device__ __forceinline__ void pack_fragment(unsigned (&a)[4], const float (&low)[4], const float (&high)[4]) {
    a[0] = pack_bf16(low[0], low[1]);
    a[1] = pack_bf16(low[2], low[3]);
    a[2] = pack_bf16(high[0], high[1]);
    a[3] = pack_bf16(high[2], high[3]);
}

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
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    constexpr int STAGE = BLOCK * (QK_STRIDE + V_STRIDE) + 3 * BLOCK * 2;  // q, dO, then lse, delta, position (as shorts)
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* k_tile = shared;                        // [BLOCK][QK_STRIDE]
    unsigned short* v_tile = k_tile + BLOCK * QK_STRIDE;    // [BLOCK][V_STRIDE]
    unsigned short* stages = v_tile + BLOCK * V_STRIDE;     // 2 x STAGE

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.x * BLOCK, kv_head = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad_row = lane / 4, quad_column = lane % 4;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
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
    // (log2 domain), delta and positions (-1 outside) by plain stores.
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
            reinterpret_cast<int*>(row_lse)[2 * BLOCK + threadIdx.x] = !inside ? -1 : causal ? packed / group : seq_len - 1;
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
    const int tiles = (packed_rows - first_row + BLOCK - 1) / BLOCK;
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
        const int* row_position = reinterpret_cast<const int*>(row_lse) + 2 * BLOCK;

        // S^T = K q^T and dP^T = V dO^T for this warp's 16 keys and the tile's 64 rows.
        float score[BLOCK / 8][4] = {}, d_prob[BLOCK / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < DK_PADDED / 16; ++kk) {
            unsigned a[4];
            load_matrices(a, k_tile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + kk * 16 + lane / 16 * 8);
#pragma unroll
            for (int np = 0; np < BLOCK / 16; ++np) {
                unsigned b[4];
                load_matrices(b, q_tile + (np * 16 + lane % 8 + lane / 16 * 8) * QK_STRIDE + kk * 16 + (lane / 8) % 2 * 8);
                mma_bf16(score[2 * np], a, b[0], b[1]);
                mma_bf16(score[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int kk = 0; kk < DV_PADDED / 16; ++kk) {
            unsigned a[4];
            load_matrices(a, v_tile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * V_STRIDE + kk * 16 + lane / 16 * 8);
#pragma unroll
            for (int np = 0; np < BLOCK / 16; ++np) {
                unsigned b[4];
                load_matrices(b, do_tile + (np * 16 + lane % 8 + lane / 16 * 8) * V_STRIDE + kk * 16 + (lane / 8) % 2 * 8);
                mma_bf16(d_prob[2 * np], a, b[0], b[1]);
                mma_bf16(d_prob[2 * np + 1], a, b[2], b[3]);
            }
        }
        // P^T and dZ^T in place; element e of tile nt is key key[e / 2] and row nt * 8 + 2 * quad_column + e % 2.
#pragma unroll
        for (int nt = 0; nt < BLOCK / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = nt * 8 + 2 * quad_column + e % 2;
                const bool visible = key_visible[e / 2] && key[e / 2] <= row_position[row] && row_lse[row] != negative_infinity();
                const float p = visible ? exp2f(score[nt][e] * scale_log2 - row_lse[row]) : 0.f;
                score[nt][e] = p;
                d_prob[nt][e] = p * (d_prob[nt][e] - row_delta[row]);
            }
        }
        // dv += P^T dO and dk += dZ^T q.
#pragma unroll
        for (int kk = 0; kk < BLOCK / 16; ++kk) {
            unsigned p[4], dz[4];
            pack_fragment(p, score[2 * kk], score[2 * kk + 1]);
            pack_fragment(dz, d_prob[2 * kk], d_prob[2 * kk + 1]);
#pragma unroll
            for (int dp = 0; dp < DV_PADDED / 16; ++dp) {
                unsigned b[4];
                load_matrices_transposed(b, do_tile + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * V_STRIDE + dp * 16 + lane / 16 * 8);
                mma_bf16(dv_acc[2 * dp], p, b[0], b[1]);
                mma_bf16(dv_acc[2 * dp + 1], p, b[2], b[3]);
            }
#pragma unroll
            for (int dp = 0; dp < DK_PADDED / 16; ++dp) {
                unsigned b[4];
                load_matrices_transposed(b, q_tile + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + dp * 16 + lane / 16 * 8);
                mma_bf16(dk_acc[2 * dp], dz, b[0], b[1]);
                mma_bf16(dk_acc[2 * dp + 1], dz, b[2], b[3]);
            }
        }
        __syncthreads();  // every warp is done with this stage before it is refilled
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (key[i] >= seq_len) continue;
        const long long row = (sequence + key[i]) * kv_heads + kv_head;
#pragma unroll
        for (int dt = 0; dt < DK_PADDED / 8; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int column = dt * 8 + 2 * quad_column + e;
                if (column < DK) dk[row * DK + column] = from_float<bf16>(dk_acc[dt][2 * i + e] * scale);
            }
        }
#pragma unroll
        for (int dt = 0; dt < DV_PADDED / 8; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int column = dt * 8 + 2 * quad_column + e;
                if (column < DV) dv[row * DV + column] = from_float<bf16>(dv_acc[dt][2 * i + e]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dq(
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
    const bf16* __restrict__ d_out, const float* __restrict__ lse, const float* __restrict__ delta,
    bf16* __restrict__ dq,                      // [B, S, Hq, DK]
    const unsigned char* __restrict__ key_valid,
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
    int position[2];
    float row_lse[2], row_delta[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        const bool inside = packed < packed_rows;
        position[i] = !inside ? -1 : causal ? packed / group : seq_len - 1;
        row_lse[i] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
        row_delta[i] = inside ? delta[row_index(packed)] : 0.f;
    }
    const int key_end = causal ? (min(row0 + BLOCK, packed_rows) - 1) / group + 1 : seq_len;
    const int tiles = (key_end + BLOCK - 1) / BLOCK;

    auto fetch = [&](int tile) {
        unsigned short* k_stage = stages + (tile % 2) * STAGE;
        auto key_row = [&](const bf16* base, int width) {
            return [=](int row) -> const bf16* {
                const int s = tile * BLOCK + row;
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
#pragma unroll
    for (int kk = 0; kk < DK_PADDED / 16; ++kk) {
        load_matrices(q_fragment[kk], q_tile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + kk * 16 + lane / 16 * 8);
    }
#pragma unroll
    for (int kk = 0; kk < DV_PADDED / 16; ++kk) {
        load_matrices(do_fragment[kk], do_tile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * V_STRIDE + kk * 16 + lane / 16 * 8);
    }

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
        const int key0 = tile * BLOCK;

        // S = q K^T and dP = dO V^T for this warp's 16 rows and the tile's 64 keys.
        float score[BLOCK / 8][4] = {}, d_prob[BLOCK / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < DK_PADDED / 16; ++kk) {
#pragma unroll
            for (int np = 0; np < BLOCK / 16; ++np) {
                unsigned b[4];
                load_matrices(b, k_tile + (np * 16 + lane % 8 + lane / 16 * 8) * QK_STRIDE + kk * 16 + (lane / 8) % 2 * 8);
                mma_bf16(score[2 * np], q_fragment[kk], b[0], b[1]);
                mma_bf16(score[2 * np + 1], q_fragment[kk], b[2], b[3]);
            }
        }
#pragma unroll
        for (int kk = 0; kk < DV_PADDED / 16; ++kk) {
#pragma unroll
            for (int np = 0; np < BLOCK / 16; ++np) {
                unsigned b[4];
                load_matrices(b, v_tile + (np * 16 + lane % 8 + lane / 16 * 8) * V_STRIDE + kk * 16 + (lane / 8) % 2 * 8);
                mma_bf16(d_prob[2 * np], do_fragment[kk], b[0], b[1]);
                mma_bf16(d_prob[2 * np + 1], do_fragment[kk], b[2], b[3]);
            }
        }
        // dZ in place of dP; element e of tile nt is row quad_row + 8 * (e / 2), key key0 + nt * 8 + 2 * quad_column + e % 2.
#pragma unroll
        for (int nt = 0; nt < BLOCK / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = key0 + nt * 8 + 2 * quad_column + e % 2, i = e / 2;
                const bool visible = key < seq_len && key <= position[i] && row_lse[i] != negative_infinity()
                    && (key_valid == nullptr || key_valid[sequence + key]);
                const float p = visible ? exp2f(score[nt][e] * scale_log2 - row_lse[i]) : 0.f;
                d_prob[nt][e] = p * (d_prob[nt][e] - row_delta[i]);
            }
        }
        // dq += dZ K.
#pragma unroll
        for (int kk = 0; kk < BLOCK / 16; ++kk) {
            unsigned dz[4];
            pack_fragment(dz, d_prob[2 * kk], d_prob[2 * kk + 1]);
#pragma unroll
            for (int dp = 0; dp < DK_PADDED / 16; ++dp) {
                unsigned b[4];
                load_matrices_transposed(b, k_tile + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + dp * 16 + lane / 16 * 8);
                mma_bf16(dq_acc[2 * dp], dz, b[0], b[1]);
                mma_bf16(dq_acc[2 * dp + 1], dz, b[2], b[3]);
            }
        }
        __syncthreads();  // every warp is done with this stage before it is refilled
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        if (packed >= packed_rows) continue;
        bf16* destination = dq + row_index(packed) * DK;
#pragma unroll
        for (int dt = 0; dt < DK_PADDED / 8; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int column = dt * 8 + 2 * quad_column + e;
                if (column < DK) destination[column] = from_float<bf16>(dq_acc[dt][2 * i + e] * scale);
            }
        }
    }
}
