// attention_mma.cu: flash attention, causal or not, for bfloat16 tensors on the tensor cores (mma.sync
// m16n8k16, bf16 inputs, float accumulation), with grouped KV heads and an optional key padding mask. Any
// head dims up to 256 on any GPU from sm_80; Hopper with head dim 128 or 64 runs attention_wgmma.cu instead.
//
// out[b,t,h] = sum over visible keys s of softmax_s(scale * q[b,t,h] . k[b,s,h/g]) * v[b,s,h/g], where a key
// is visible when it is valid and, in causal mode, s <= t; a row that sees no key (all padded) gets zeros.
// When `lse` is not null it also receives each row's log-sum-exp, log sum_s exp(scale * q . k) (natural
// log, float32, -inf for a row that sees no key), which the backward pass reads.
//
// GQA packing: the g query heads that share KV head j are folded into the rows of one problem, packed
// row r = t * g + i standing for position t and head j * g + i. A block therefore loads each K/V tile
// once for all heads of the group, and the grid does not grow with g.
//
// Tiling: grid (ceil(S*g / 64), Hkv, B), 4 warps. A block owns 64 packed rows (16 per warp) and walks key
// tiles of 64 up to the last position its rows can see (causal tile skipping in causal mode; the heaviest row tiles are
// scheduled first). Each warp keeps its Q fragments in registers for the whole walk. K/V tiles are
// double-buffered in shared memory: cp.async fetches tile i+1 while tile i is used. Rows are padded by
// 16 bytes so that ldmatrix reads hit 32 distinct banks. Per key tile each warp computes its 16 x 64
// scores (ldmatrix for K), masks and rescales them with the online softmax (exp2, running max and sum per
// row), reuses the score accumulators directly as the A fragments of P (the m16n8 accumulator layout of
// two adjacent key tiles is the m16k16 operand layout), and accumulates P . V (ldmatrix.trans for V) in
// registers. Head dims that are not a multiple of 16 are zero-padded in shared memory.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv> (both at most 256).
#include "common.cuh"
#include "mma.cuh"
#include "attention.cuh"
#include "documents.cuh"

constexpr int BLOCK_M = 64, BLOCK_N = 64, THREADS = 128;
// Shared-memory row strides in bf16 elements: 8 extra elements (16 bytes) spread ldmatrix reads over all banks.
constexpr int QK_STRIDE = DK_PADDED + 8, V_STRIDE = DV_PADDED + 8;
// K/V tiles in flight: one being read while the next one is fetched.
constexpr int STAGES = 2, STAGE_SIZE = BLOCK_N * (QK_STRIDE + V_STRIDE);

extern "C" __global__ void __launch_bounds__(THREADS) attention_forward(
    const bf16* __restrict__ q,                 // [B, S, Hq, DK]
    const bf16* __restrict__ k,                 // [B, S, Hkv, DK]
    const bf16* __restrict__ v,                 // [B, S, Hkv, DV]
    bf16* __restrict__ out,                     // [B, S, Hq, DV]
    float* __restrict__ lse,                    // [B, S, Hq] or null
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale_log2, int causal)
{
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* q_tile = shared;                       // [BLOCK_M][QK_STRIDE]
    unsigned short* kv_tiles = q_tile + BLOCK_M * QK_STRIDE; // STAGES x ([BLOCK_N][QK_STRIDE] K, [BLOCK_N][V_STRIDE] V)

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int row0 = (gridDim.x - 1 - blockIdx.x) * BLOCK_M;
    const int kv_head = blockIdx.y, batch = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad_row = lane / 4, quad_column = lane % 4;
    const long long sequence = static_cast<long long>(batch) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;

    load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(q_tile, BLOCK_M, q, [&](int row) -> const bf16* {
        const int packed = row0 + row;
        if (packed >= packed_rows) return nullptr;
        return q + ((sequence + packed / group) * q_heads + kv_head * group + packed % group) * DK;
    });
    commit_loads();
    wait_loads<0>();
    __syncthreads();
    // This warp's Q rows as mma A fragments, one set of four registers per 16 channels.
    unsigned q_fragment[DK_PADDED / 16][4];
    warp_load_fragments<DK_PADDED>(q_fragment, q_tile + warp * 16 * QK_STRIDE, QK_STRIDE, lane);

    // This thread's two rows are quad_row and quad_row + 8 of its warp's 16; position -1 sees no key.
    // The rows see keys first[i] ..< position[i] + 1; the block's key tiles run from first_tile.
    int position[2], first[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        position[i] = packed >= packed_rows ? -1 : causal ? packed / group : seq_len - 1;
        first[i] = position[i] < 0 ? 0 : document_start(row_positions, position[i]);
    }
    const BlockKeys keys = block_keys<BLOCK_N>(row_positions, row0, BLOCK_M, packed_rows, group, seq_len, causal);
    const int first_tile = keys.first_tile, tiles = keys.tiles;

    auto load_keys_and_values = [&](int tile) {
        unsigned short* k_tile = kv_tiles + (tile % STAGES) * STAGE_SIZE;
        auto key_row = [&](const bf16* base, int width) {
            return [=](int row) -> const bf16* {
                const int s = (first_tile + tile) * BLOCK_N + row;
                return s < seq_len ? base + ((sequence + s) * kv_heads + kv_head) * width : nullptr;
            };
        };
        load_tile<DK, DK_PADDED, QK_STRIDE, THREADS>(k_tile, BLOCK_N, k, key_row(k, DK));
        load_tile<DV, DV_PADDED, V_STRIDE, THREADS>(k_tile + BLOCK_N * QK_STRIDE, BLOCK_N, v, key_row(v, DV));
        commit_loads();
    };

    float acc[DV_PADDED / 8][4] = {};
    float row_max[2] = {negative_infinity(), negative_infinity()}, row_sum[2] = {0.f, 0.f};

    load_keys_and_values(0);
    for (int tile = 0; tile < tiles; ++tile) {
        // Fetch the next tile into the other stage (freed by the barrier that ended the previous
        // iteration), then wait only for this one.
        if (tile + 1 < tiles) {
            load_keys_and_values(tile + 1);
            wait_loads<1>();
        } else {
            wait_loads<0>();
        }
        __syncthreads();
        const unsigned short* k_tile = kv_tiles + (tile % STAGES) * STAGE_SIZE;
        const unsigned short* v_tile = k_tile + BLOCK_N * QK_STRIDE;
        const int key0 = (first_tile + tile) * BLOCK_N;

        // S = Q . K^T for this warp's 16 rows and the 64 keys of the tile.
        float score[BLOCK_N / 8][4] = {};
        warp_mma_fragments_bt<DK_PADDED, BLOCK_N>(score, q_fragment, k_tile, QK_STRIDE, lane);

        // Causal and padding mask, scale into the exp2 domain, online softmax per row.
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float tile_max = negative_infinity();
#pragma unroll
            for (int nt = 0; nt < BLOCK_N / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int key = key0 + nt * 8 + 2 * quad_column + e;
                    const bool visible = key <= position[i] && key >= first[i] && (key_valid == nullptr || key_valid[sequence + key]);
                    float& s = score[nt][2 * i + e];
                    s = visible ? s * scale_log2 : negative_infinity();
                    tile_max = fmaxf(tile_max, s);
                }
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
            const float new_max = fmaxf(row_max[i], tile_max);
            // While a row has seen no visible key its max is -inf; subtracting 0 keeps exp2 at 0, not NaN.
            const float base = new_max == negative_infinity() ? 0.f : new_max;
            const float rescale = exp2f(row_max[i] - base);
            row_max[i] = new_max;
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < BLOCK_N / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float& s = score[nt][2 * i + e];
                    s = exp2f(s - base);
                    sum += s;
                }
            }
            row_sum[i] = row_sum[i] * rescale + sum;
#pragma unroll
            for (int dt = 0; dt < DV_PADDED / 8; ++dt) {
                acc[dt][2 * i] *= rescale;
                acc[dt][2 * i + 1] *= rescale;
            }
        }

        // O += P . V, P taken from the score accumulators.
        warp_mma_accumulators_b<BLOCK_N, DV_PADDED>(acc, score, v_tile, V_STRIDE, lane);
        __syncthreads();  // every warp is done with this stage before it is refilled
    }

    // Each thread summed only its own columns: add the quad's partial sums, then normalise and store.
    bf16* rows[2];
    float inverse[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float total = row_sum[i];
        total += __shfl_xor_sync(0xffffffffu, total, 1);
        total += __shfl_xor_sync(0xffffffffu, total, 2);
        const int packed = row0 + warp * 16 + quad_row + 8 * i;
        inverse[i] = total > 0.f ? 1.f / total : 0.f;
        rows[i] = nullptr;
        if (packed >= packed_rows) continue;
        const long long row = (sequence + packed / group) * q_heads + kv_head * group + packed % group;
        if (lse != nullptr && quad_column == 0) {
            lse[row] = total > 0.f ? (row_max[i] + __log2f(total)) * 0.6931471805599453f : negative_infinity();
        }
        rows[i] = out + row * DV;
    }
    store_accumulators<DV_PADDED, DV>(acc, rows, inverse, lane);
}
