// decode_attention_mma.cu: decode_attention.cu's partial kernel for bfloat16 caches on the tensor cores
// (mma.sync m16n8k16, bf16 inputs, float accumulation), for several packed rows per KV head (the query heads
// of a group, the new rows of a chunk): the same grid, arguments and partial results, merged by
// decode_attention.cu's combine. The streaming kernel does a row's dot products and its P . V on the FMA
// pipe with a query and an output per lane and packed row; here they are mma tiles, so the registers and
// instructions per key no longer grow with the packed rows, and the loads go to shared memory (many in
// flight without registers).
//
// Tiling: grid (splits, Hkv * ceil(rows / 16), B), WARPS warps. A block takes 16 packed rows (r = i * g + head
// as in decode_attention.cu; rows past the last are zeros) of one KV head, one sequence and one split of its
// context (split s: keys from the first row's lo, rounded down to a page, + s * split_tokens, split_tokens
// further). Each warp streams its own chunks of CHUNK keys (chunks w, w + WARPS, ... of the split) through its
// own ring of STAGES shared-memory stages filled by cp.async, STAGES - 1 chunks ahead, so the warps need no
// barrier until the end. Per chunk a warp computes its 16 x CHUNK scores from the Q fragments it keeps in
// registers (ldmatrix for K), masks them (a row sees the keys from lo(p) to its position p, none past the
// context), runs the online softmax (log2 domain) on the accumulators, and adds P . V (the score accumulators
// are the A fragments; ldmatrix.trans for V) to its 16 x DV accumulators. Keys no row of the block's sequence
// sees are zero-filled instead of read: past the context a page holds stale data (maybe NaN), and 0 * NaN
// would reach the output through P . V. At the end the warps' states meet in shared memory (the stages
// reused) and the block writes the split's unnormalised output with its running max and sum.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv> (multiples of 16, at most 256) and -DSTAGES=<chunks a warp
// holds in shared memory, at least 2>; dynamic shared memory: WARPS * STAGES * CHUNK * (DK + DV + 16) * 2 bytes.
#include "common.cuh"
#include "mma.cuh"
#include "attention.cuh"
#include "decode_attention.cuh"

#ifndef STAGES
#define STAGES 3
#endif

constexpr int THREADS = 128, WARPS = THREADS / 32, ROWS = 16, CHUNK = 16;
// Shared-memory row strides in bf16 elements: 8 extra elements (16 bytes) spread ldmatrix reads over all banks.
constexpr int K_STRIDE = DK + 8, V_STRIDE = DV + 8, STAGE_SIZE = CHUNK * (K_STRIDE + V_STRIDE);
static_assert(DK % 16 == 0 && DV % 16 == 0 && DK <= 256 && DV <= 256, "dk and dv must be multiples of 16, at most 256");
static_assert(PAGE % CHUNK == 0 && STAGES >= 2, "a chunk lies within one page; a warp needs two stages or more");
static_assert(ROWS * DV * 4 <= STAGES * STAGE_SIZE * 2, "a warp's outputs must fit in its stages");

// Starts copying the WIDTH channels of tokens base .. base + CHUNK - 1 (within one page of the pool) of one
// cache into a stage's rows (STRIDE apart), with the 32 lanes of a warp: tokens outside [from, end) are
// zero-filled. 16-byte words, 16 lanes per 256 bytes of a token.
template <int WIDTH, int STRIDE>
__device__ __forceinline__ void load_chunk_rows(unsigned short* rows, const bf16* cache, long long page, int base, int from,
                                                int end, int kv_heads, int kv_head, int lane) {
    constexpr int WORDS = WIDTH / 8;
#pragma unroll
    for (int n = 0; n < CHUNK * WORDS / 32; ++n) {
        const int index = n * 32 + lane, key = index / WORDS, word = index % WORDS;
        const long long token = (page * PAGE + (base + key) % PAGE) * kv_heads + kv_head;
        const bool inside = base + key >= from && base + key < end;
        copy_async_16(rows + key * STRIDE + word * 8, inside ? cache + token * WIDTH + word * 8 : cache, inside);
    }
}

// Starts copying the keys and values of tokens base .. base + CHUNK - 1 into a stage.
__device__ __forceinline__ void load_chunk(unsigned short* stage, const bf16* key_cache, const bf16* value_cache,
                                           long long page, int base, int from, int end, int kv_heads, int kv_head,
                                           int lane) {
    load_chunk_rows<DK, K_STRIDE>(stage, key_cache, page, base, from, end, kv_heads, kv_head, lane);
    load_chunk_rows<DV, V_STRIDE>(stage + CHUNK * K_STRIDE, value_cache, page, base, from, end, kv_heads, kv_head, lane);
}

extern "C" __global__ void __launch_bounds__(THREADS, 2) decode_attention_partial(
    const bf16* __restrict__ q,               // [B, query_rows, Hq, DK]
    const bf16* __restrict__ key_cache,       // [pages, PAGE, Hkv, DK]
    const bf16* __restrict__ value_cache,     // [pages, PAGE, Hkv, DV]
    const int* __restrict__ page_table,       // [B, max_pages]
    const int* __restrict__ context_lengths,  // [B]
    float* __restrict__ partial_out,          // [B, query_rows, Hq, splits, DV]
    float* __restrict__ partial_max,          // [B, query_rows, Hq, splits]
    float* __restrict__ partial_sum,          // [B, query_rows, Hq, splits]
    int q_heads, int kv_heads, int query_rows, int max_pages, int split_tokens, int window, float scale_log2)
{
    extern __shared__ __align__(16) unsigned short shared[];
    __shared__ float warp_max[WARPS * ROWS], warp_sum[WARPS * ROWS];

    const SplitBlock block = split_block<ROWS>(context_lengths, q_heads, kv_heads, query_rows, split_tokens, window);
    const int b = block.b, group = block.group, rows = block.rows, kv_head = block.kv_head, first_row = block.first_row;
    const int context = block.context, seen_from = block.seen_from, first_key = block.first_key, end_key = block.end_key;
    if (first_key >= end_key) return;  // the combine reads only the splits that hold keys
    const int* pages = page_table + static_cast<long long>(b) * max_pages;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad_row = lane / 4, quad_lane = lane % 4;
    unsigned short* ring = shared + warp * STAGES * STAGE_SIZE;

    // This warp's chunks of the split, the first STAGES - 1 started at once: one commit group per step, empty
    // ones included, so that waiting for all but the newest STAGES - 2 groups at step n means chunk n is in.
    const int chunks = (end_key - first_key + CHUNK - 1) / CHUNK;
    const int mine = warp < chunks ? (chunks - warp + WARPS - 1) / WARPS : 0;
#pragma unroll
    for (int n = 0; n < STAGES - 1; ++n) {
        if (n < mine) {
            const int base = first_key + (warp + n * WARPS) * CHUNK;
            load_chunk(ring + n * STAGE_SIZE, key_cache, value_cache, pages[base / PAGE], base, seen_from, end_key,
                       kv_heads, kv_head, lane);
        }
        commit_loads();
    }

    // The A fragments of the block's 16 packed rows of Q (this lane: rows quad_row and quad_row + 8, columns
    // 2 quad_lane, +1 and 2 quad_lane + 8, +9 of every 16), and the key range of each of its two rows.
    unsigned query[DK / 16][4];
    int row_from[2], row_to[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = first_row + quad_row + 8 * h, i = row / group, head = kv_head * group + row % group;
        const bool real = row < rows;
        const unsigned* source = reinterpret_cast<const unsigned*>(q + ((static_cast<long long>(b) * query_rows + i) * q_heads + head) * DK);
#pragma unroll
        for (int kk = 0; kk < DK / 16; ++kk) {
            query[kk][h] = real ? source[kk * 8 + quad_lane] : 0u;
            query[kk][2 + h] = real ? source[kk * 8 + 4 + quad_lane] : 0u;
        }
        const int position = context - query_rows + i;
        row_to[h] = real ? position : -1;
        row_from[h] = window > 0 ? max(0, position - window + 1) : 0;
    }

    // out[dt][e]: row quad_row + 8 (e / 2), channel dt * 8 + 2 quad_lane + e % 2; row_sum holds this lane's keys
    // only until the end.
    float out[DV / 8][4], row_max[2] = {negative_infinity(), negative_infinity()}, row_sum[2] = {0.f, 0.f};
#pragma unroll
    for (int dt = 0; dt < DV / 8; ++dt) out[dt][0] = out[dt][1] = out[dt][2] = out[dt][3] = 0.f;

    for (int n = 0; n < mine; ++n) {
        wait_loads<STAGES - 2>();
        __syncwarp();  // chunk n is in for every lane, and every lane is done with the stage refilled next
        if (n + STAGES - 1 < mine) {
            const int base = first_key + (warp + (n + STAGES - 1) * WARPS) * CHUNK;
            load_chunk(ring + (n + STAGES - 1) % STAGES * STAGE_SIZE, key_cache, value_cache, pages[base / PAGE], base,
                       seen_from, end_key, kv_heads, kv_head, lane);
        }
        commit_loads();
        const unsigned short* stage = ring + n % STAGES * STAGE_SIZE;
        const int base = first_key + (warp + n * WARPS) * CHUNK;

        // score[t][e]: row quad_row + 8 (e / 2), key base + t * 8 + 2 quad_lane + e % 2.
        float score[CHUNK / 8][4];
#pragma unroll
        for (int t = 0; t < CHUNK / 8; ++t) score[t][0] = score[t][1] = score[t][2] = score[t][3] = 0.f;
        warp_mma_fragments_bt<DK, CHUNK>(score, query, stage, K_STRIDE, lane);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float chunk_max = negative_infinity();
#pragma unroll
            for (int t = 0; t < CHUNK / 8; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int key = base + t * 8 + 2 * quad_lane + e;
                    float& s = score[t][2 * h + e];
                    s = key >= row_from[h] && key <= row_to[h] && key < end_key ? s * scale_log2 : negative_infinity();
                    chunk_max = fmaxf(chunk_max, s);
                }
            }
            chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, 1));
            chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, 2));
            float base_max;
            const float rescale = absorb_tile_max(row_max[h], chunk_max, base_max);
            float sum = row_sum[h] * rescale;
#pragma unroll
            for (int t = 0; t < CHUNK / 8; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    score[t][2 * h + e] = exp2f(score[t][2 * h + e] - base_max);
                    sum += score[t][2 * h + e];
                }
            }
            row_sum[h] = sum;
#pragma unroll
            for (int dt = 0; dt < DV / 8; ++dt) {
                out[dt][2 * h] *= rescale;
                out[dt][2 * h + 1] *= rescale;
            }
        }
        warp_mma_accumulators_b<CHUNK, DV>(out, score, stage + CHUNK * K_STRIDE, V_STRIDE, lane);
    }

    // The row sums over the four lanes of a row; then the warps' states through shared memory (the stages, now
    // that every warp is done with them).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
    }
    wait_loads<0>();
    __syncthreads();
    float* warp_out = reinterpret_cast<float*>(shared);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int j = quad_row + 8 * h;
        if (quad_lane == 0) {
            warp_max[warp * ROWS + j] = row_max[h];
            warp_sum[warp * ROWS + j] = row_sum[h];
        }
#pragma unroll
        for (int dt = 0; dt < DV / 8; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) warp_out[(warp * ROWS + j) * DV + dt * 8 + 2 * quad_lane + e] = out[dt][2 * h + e];
        }
    }
    __syncthreads();
    write_split_partials<ROWS, WARPS, THREADS>(warp_out, warp_max, warp_sum, partial_out, partial_max, partial_sum,
                                               block, q_heads, query_rows);
}
