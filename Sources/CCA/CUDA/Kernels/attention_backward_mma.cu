// attention_backward_mma.cu: the attention backward pass for bfloat16 tensors on the tensor cores (mma.sync
// m16n8k16, bf16 inputs, float accumulation), in the FlashAttention-2 manner: causal block skipping, grouped
// KV heads, an optional key padding mask, any head dims up to 256.
//
// For out = softmax(scale * q k^T) v (attention_mma.cu / attention_wgmma.cu), its log-sum-exp `lse` and
// delta = rowsum(dO * O) (attention_backward_prepare.cu): P = exp(scale * q.k - lse) on visible keys (0 on the
// rest, and for rows whose lse is -inf), dP = dO . v^T, dZ = P * (dP - delta); dv = P^T dO, dk = scale * dZ^T q,
// dq = scale * dZ k. P is recomputed from lse tile by tile; nothing of size S^2 is ever stored.
//
// GQA packing as in the forward: packed row r = t * g + i is position t and query head j * g + i of KV head
// j, so a block's dk and dv sum over all the query heads that share its KV head.
//
// Tiling: grid (ceil(S / 64), Hkv, B), 4 warps. A block owns 64 keys (16 per warp) of one KV head and keeps
// their K and V tiles in shared memory; it walks tiles of 64 packed query rows, from the first one whose
// positions can see its keys (causal) to the end. Per query tile each warp computes, in registers, the
// transposed scores S^T (its 16 keys x 64 rows; A = K from shared memory, B = Q), masks them and forms P^T
// from the tile's lse, accumulates dv += P^T dO (the score accumulators reused as A fragments, dO by
// ldmatrix.trans), computes dP^T = V dO^T and dZ^T = P^T * (dP^T - delta), and accumulates dk += dZ^T q. The
// warps then write dZ^T (bf16) to shared memory and each computes dq for 16 of the tile's rows over the
// block's 64 keys (dZ by ldmatrix.trans, K by ldmatrix.trans), added with float atomics into a zeroed
// float32 dq buffer that attention_backward_store rounds and scales at the end. Rows are padded by 16 bytes so
// that ldmatrix reads hit distinct banks; head dims that are not a multiple of 16 are zero-padded.
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
constexpr int BLOCK_N = 64, BLOCK_M = 64, THREADS = 128;
constexpr int QK_STRIDE = DK_PADDED + 8, V_STRIDE = DV_PADDED + 8, DZ_STRIDE = BLOCK_M + 8;
constexpr float LOG2E = 1.4426950408889634f;
static_assert(DK_PADDED <= 256 && DV_PADDED <= 256, "head dims above 256 are not supported");

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward(
    const bf16* __restrict__ q,                 // [B, S, Hq, DK]
    const bf16* __restrict__ k,                 // [B, S, Hkv, DK]
    const bf16* __restrict__ v,                 // [B, S, Hkv, DV]
    const bf16* __restrict__ d_out,             // [B, S, Hq, DV]
    const float* __restrict__ lse,              // [B, S, Hq], natural log
    const float* __restrict__ delta,            // [B, S, Hq]
    float* __restrict__ dq_accumulator,         // [B, S, Hq, DK], zeroed; receives dZ k (unscaled)
    bf16* __restrict__ dk,                      // [B, S, Hkv, DK]
    bf16* __restrict__ dv,                      // [B, S, Hkv, DV]
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* k_tile = shared;                          // [BLOCK_N][QK_STRIDE]
    unsigned short* v_tile = k_tile + BLOCK_N * QK_STRIDE;    // [BLOCK_N][V_STRIDE]
    unsigned short* q_tile = v_tile + BLOCK_N * V_STRIDE;     // [BLOCK_M][QK_STRIDE]
    unsigned short* do_tile = q_tile + BLOCK_M * QK_STRIDE;   // [BLOCK_M][V_STRIDE]
    unsigned short* dz_tile = do_tile + BLOCK_M * V_STRIDE;   // [BLOCK_N][DZ_STRIDE]: dZ^T, keys by rows
    float* row_lse = reinterpret_cast<float*>(dz_tile + BLOCK_N * DZ_STRIDE);  // [BLOCK_M], log2 domain
    float* row_delta = row_lse + BLOCK_M;                     // [BLOCK_M]
    int* row_position = reinterpret_cast<int*>(row_delta + BLOCK_M);  // [BLOCK_M], -1 outside

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.x * BLOCK_N, kv_head = blockIdx.y;
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
    load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(k_tile, BLOCK_N, k, key_row(k, DK));
    load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(v_tile, BLOCK_N, v, key_row(v, DV));
    commit_loads();

    // This thread's two keys (accumulator rows quad_row and quad_row + 8 of its warp's 16).
    int key[2];
    bool key_visible[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        key[i] = key0 + warp * 16 + quad_row + 8 * i;
        key_visible[i] = key[i] < seq_len && (key_valid == nullptr || key_valid[sequence + key[i]]);
    }

    float dk_acc[DK_PADDED / 8][4] = {}, dv_acc[DV_PADDED / 8][4] = {};
    const int first_row = causal ? min(key0 * group, packed_rows) / BLOCK_M * BLOCK_M : 0;
    for (int tile0 = first_row; tile0 < packed_rows; tile0 += BLOCK_M) {
        __syncthreads();  // the previous tile's q, dO and dZ are no longer read
        auto query_row = [&](const bf16* base, int width) {
            return [=](int row) -> const bf16* {
                const int packed = tile0 + row;
                return packed < packed_rows ? base + row_index(packed) * width : nullptr;
            };
        };
        load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(q_tile, BLOCK_M, q, query_row(q, DK));
        load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(do_tile, BLOCK_M, d_out, query_row(d_out, DV));
        commit_loads();
        if (threadIdx.x < BLOCK_M) {
            const int packed = tile0 + threadIdx.x;
            const bool inside = packed < packed_rows;
            row_lse[threadIdx.x] = inside ? lse[row_index(packed)] * LOG2E : negative_infinity();
            row_delta[threadIdx.x] = inside ? delta[row_index(packed)] : 0.f;
            row_position[threadIdx.x] = !inside ? -1 : causal ? packed / group : seq_len - 1;
        }
        wait_loads<0>();
        __syncthreads();

        // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys and the tile's 64 rows.
        float score[BLOCK_M / 8][4] = {}, d_prob[BLOCK_M / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < DK_PADDED / 16; ++kk) {
            unsigned a[4];
            load_matrices(a, k_tile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + kk * 16 + lane / 16 * 8);
#pragma unroll
            for (int np = 0; np < BLOCK_M / 16; ++np) {
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
            for (int np = 0; np < BLOCK_M / 16; ++np) {
                unsigned b[4];
                load_matrices(b, do_tile + (np * 16 + lane % 8 + lane / 16 * 8) * V_STRIDE + kk * 16 + (lane / 8) % 2 * 8);
                mma_bf16(d_prob[2 * np], a, b[0], b[1]);
                mma_bf16(d_prob[2 * np + 1], a, b[2], b[3]);
            }
        }
        // P^T and dZ^T in place of the scores and dP^T; element e of tile nt is key key[e / 2], row
        // nt * 8 + 2 * quad_column + e % 2.
#pragma unroll
        for (int nt = 0; nt < BLOCK_M / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = nt * 8 + 2 * quad_column + e % 2;
                const bool visible = key_visible[e / 2] && key[e / 2] <= row_position[row] && row_lse[row] != negative_infinity();
                const float p = visible ? exp2f(score[nt][e] * scale_log2 - row_lse[row]) : 0.f;
                score[nt][e] = p;
                d_prob[nt][e] = p * (d_prob[nt][e] - row_delta[row]);
            }
        }
        // dv += P^T dO and dk += dZ^T q; the accumulators of row tiles 2kk and 2kk+1 are one A fragment.
#pragma unroll
        for (int kk = 0; kk < BLOCK_M / 16; ++kk) {
            const unsigned p[4] = {pack_bf16(score[2 * kk][0], score[2 * kk][1]), pack_bf16(score[2 * kk][2], score[2 * kk][3]),
                                   pack_bf16(score[2 * kk + 1][0], score[2 * kk + 1][1]),
                                   pack_bf16(score[2 * kk + 1][2], score[2 * kk + 1][3])};
            const unsigned dz[4] = {pack_bf16(d_prob[2 * kk][0], d_prob[2 * kk][1]), pack_bf16(d_prob[2 * kk][2], d_prob[2 * kk][3]),
                                    pack_bf16(d_prob[2 * kk + 1][0], d_prob[2 * kk + 1][1]),
                                    pack_bf16(d_prob[2 * kk + 1][2], d_prob[2 * kk + 1][3])};
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
            // dZ^T to shared memory, keys by rows, for the dq product below.
#pragma unroll
            for (int half = 0; half < 2; ++half) {
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    unsigned* pair = reinterpret_cast<unsigned*>(
                        dz_tile + (warp * 16 + quad_row + 8 * i) * DZ_STRIDE + (2 * kk + half) * 8 + 2 * quad_column);
                    *pair = pack_bf16(d_prob[2 * kk + half][2 * i], d_prob[2 * kk + half][2 * i + 1]);
                }
            }
        }
        __syncthreads();

        // dq of the tile's rows 16 * warp .. 16 * warp + 15: dZ (rows x the block's 64 keys) times K.
        float dq_acc[DK_PADDED / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
            unsigned a[4];
            const int matrix = lane / 8;
            load_matrices_transposed(a, dz_tile + (kk * 16 + matrix / 2 * 8 + lane % 8) * DZ_STRIDE + warp * 16 + matrix % 2 * 8);
#pragma unroll
            for (int dp = 0; dp < DK_PADDED / 16; ++dp) {
                unsigned b[4];
                load_matrices_transposed(b, k_tile + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * QK_STRIDE + dp * 16 + lane / 16 * 8);
                mma_bf16(dq_acc[2 * dp], a, b[0], b[1]);
                mma_bf16(dq_acc[2 * dp + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int packed = tile0 + warp * 16 + quad_row + 8 * i;
            if (packed >= packed_rows) continue;
            float* destination = dq_accumulator + row_index(packed) * DK;
#pragma unroll
            for (int dt = 0; dt < DK_PADDED / 8; ++dt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int column = dt * 8 + 2 * quad_column + e;
                    if (column < DK) atomicAdd(destination + column, dq_acc[dt][2 * i + e]);
                }
            }
        }
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
