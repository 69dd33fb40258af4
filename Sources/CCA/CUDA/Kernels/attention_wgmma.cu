// attention_wgmma.cu: flash attention for bfloat16 tensors with head dim 128 on Hopper's warpgroup tensor
// cores (wgmma, sm_90a only), causal or not, with grouped KV heads and an optional key padding mask.
//
// out[b,t,h] = sum over visible keys s of softmax_s(scale * q[b,t,h] . k[b,s,h/g]) * v[b,s,h/g], where a
// key is visible when it is valid and, in causal mode, s <= t; a row that sees no key gets zeros; `lse`, when
// not null, receives each row's natural log-sum-exp (float32, -inf for a row that sees no key). Same
// function and GQA packing as attention_mma.cu (packed row r = t * g + i is position t, query head
// j * g + i of KV head j), so one K/V tile serves every query head of its group.
//
// Tiling: grid (Hkv * B, ceil(S*g / 128)); the row blocks run heaviest first (causal tile skipping makes
// late rows longer). 384 threads = 3 warpgroups, warp-specialised: warpgroup 0 is the producer (setmaxnreg
// down to 24 registers) and only copies tiles with cp.async; warpgroups 1 and 2 are the consumers (setmaxnreg
// up to 240), each owning 64 of the block's 128 packed rows, and walk key tiles of 128. Q, K and V tiles
// (128 rows x 128 bf16) live in shared memory in the 128-byte-swizzle layout that wgmma descriptors read:
// each tile is two column halves of [128 rows][64 bf16], and the 16-byte chunk c of row r is stored at
// chunk c ^ (r % 8). K/V tiles are triple-buffered and handed over through mbarriers, with no block-wide
// barrier in the loop: the producer waits on empty[stage] (one arrival per consumer warp once its P V of
// the stage's tile is done), copies K and V into the stage and arms full[stage] with
// cp.async.mbarrier.arrive (due when its copies land); a consumer waits on full[stage] and fences the
// async proxy before its wgmma read the tile. So the producer runs up to three tiles ahead and the two
// consumer warpgroups drift freely against each other. S = Q K^T takes 8 wgmma m64n128k16 (both operands
// K-major from shared memory); P V takes 8 more (P from registers: the accumulator layout of two adjacent
// 8-key column tiles is the A layout of one 16-key step; V from shared memory as an N-major B operand).
// The warpgroup's steps are software-pipelined (as FlashAttention-3) so that the tensor cores work during
// the softmax: with P of tile j in registers it issues the scores of tile j+1 and then P V for tile j,
// waits for the scores only, and applies the mask and the online softmax (exp2, running max and sum per
// row) to them while P V runs; O is rescaled and the new P packed once P V is done.
#include "common.cuh"
#include "wgmma.cuh"
#include "documents.cuh"

constexpr int D = 128;                                 // head dim of Q, K and V
constexpr int BLOCK_M = 128, BLOCK_N = 128, THREADS = 384;  // a producer and two consumer warpgroups
constexpr int HALF_BYTES = 128 * 128;                  // one column half of a tile: 128 rows x 128 bytes
constexpr int TILE_BYTES = 2 * HALF_BYTES;             // one 128 x 128 bf16 tile
constexpr int STAGES = 3;                              // K/V tiles in flight
constexpr int PRODUCER_THREADS = 128;                  // warpgroup 0 loads; warpgroups 1 and 2 compute
// Shared memory: Q, then STAGES x (K, V), (1 + 2 * STAGES) * TILE_BYTES, and 1024 bytes more so that the
// base can be aligned to a swizzle atom (the host's launch passes this size); the mbarriers are static.

extern "C" __global__ void __launch_bounds__(THREADS, 1) attention_forward(
    const bf16* __restrict__ q,                 // [B, S, Hq, 128]
    const bf16* __restrict__ k,                 // [B, S, Hkv, 128]
    const bf16* __restrict__ v,                 // [B, S, Hkv, 128]
    bf16* __restrict__ out,                     // [B, S, Hq, 128]
    float* __restrict__ lse,                    // [B, S, Hq] or null
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale_log2, int causal)
{
    extern __shared__ __align__(16) unsigned char shared[];
    // full[stage]: the stage's K and V tiles have landed; empty[stage]: both consumers are done with it.
    __shared__ __align__(8) unsigned long long barriers[2 * STAGES + 1];
    const unsigned full = shared_address(barriers), empty = full + 8 * STAGES, q_full = full + 16 * STAGES;
    const unsigned base = (shared_address(shared) + 1023) & ~1023u;  // swizzle atoms are 1024-byte aligned
    const unsigned q_tile = base;
    auto k_tile = [&](int tile) { return base + TILE_BYTES * (1 + 2 * (tile % STAGES)); };

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int kv_head = blockIdx.x % kv_heads, batch = blockIdx.x / kv_heads;
    const int row0 = (gridDim.y - 1 - blockIdx.y) * BLOCK_M;
    const long long sequence = static_cast<long long>(batch) * seq_len;
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    // Producer and consumers walk the same key tiles: first_tile + n for n in 0 ..< tiles, in stage n % STAGES.
    const BlockKeys keys = block_keys<BLOCK_N>(row_positions, row0, BLOCK_M, packed_rows, group, seq_len, causal);
    const int first_tile = keys.first_tile, tiles = keys.tiles;

    init_pipeline<STAGES>(full, empty, q_full, PRODUCER_THREADS);

    if (threadIdx.x < PRODUCER_THREADS) {
        // Producer: Q once, then K and V tile by tile into the stage the consumers last released.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
        // Thread t copies chunk t % 16 of rows t / 16 + 8i; all those rows share one swizzle phase (t / 16).
        const int chunk = threadIdx.x % 16, first_row = threadIdx.x / 16;
        const unsigned offset = swizzled<BLOCK_M>(first_row, chunk);
#pragma unroll 1
        for (int row = first_row; row < BLOCK_M; row += 8) {
            const int packed = row0 + row;
            copy_chunk(q_tile + offset + (row - first_row) * 128,
                       packed < packed_rows
                           ? q + ((sequence + packed / group) * q_heads + kv_head * group + packed % group) * D + chunk * 8
                           : nullptr, q);
        }
        barrier_arrive_on_loads(q_full);
        const long long row_stride = static_cast<long long>(kv_heads) * D;
#pragma unroll 1
        for (int tile = 0; tile < tiles; ++tile) {
            const int stage = tile % STAGES;
            if (tile >= STAGES) barrier_wait(empty + 8 * stage, (tile / STAGES - 1) & 1);
            const unsigned keys = k_tile(tile) + offset;
            const int key0 = (first_tile + tile) * BLOCK_N;
            const long long first = ((sequence + key0 + first_row) * kv_heads + kv_head) * D + chunk * 8;
            const bf16 *key = k + first, *value = v + first;
#pragma unroll 4
            for (int i = 0; i < BLOCK_N / 8; ++i) {
                const bool inside = key0 + first_row + 8 * i < seq_len;
                copy_chunk(keys + i * 1024, inside ? key : nullptr, k);
                copy_chunk(keys + TILE_BYTES + i * 1024, inside ? value : nullptr, v);
                key += 8 * row_stride;
                value += 8 * row_stride;
            }
            barrier_arrive_on_loads(full + 8 * stage);
        }
        asm volatile("cp.async.wait_all;" ::: "memory");
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
    const int warpgroup = threadIdx.x / 128 - 1, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;

    // This thread's two rows of the warpgroup's 64: accumulator rows lane/4 and lane/4 + 8 of its warp.
    // They see keys first[i] ..< position[i] + 1.
    int position[2], first[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int packed = row0 + warpgroup * 64 + warp * 16 + lane / 4 + 8 * i;
        position[i] = packed >= packed_rows ? -1 : causal ? packed / group : seq_len - 1;
        first[i] = position[i] < 0 ? 0 : document_start(row_positions, position[i]);
    }
    // Key tiles from here on need the causal mask for some row of the block.
    const int first_masked_key = causal ? row0 / group : seq_len;

    float o[64] = {}, s[64], rescales[2];
    unsigned p[8][4];
    float row_max[2] = {negative_infinity(), negative_infinity()}, row_sum[2] = {0.f, 0.f};
    const unsigned q_rows = q_tile + warpgroup * 64 * 128;

    // Issues S = Q K^T for a tile: 16 channels per step; steps 0-3 read the first column half, 4-7 the second.
    auto issue_scores = [&](int tile) {
        const unsigned keys = k_tile(tile);
        wgmma_fence();
        wgmma_shared<false>(s, descriptor(q_rows, 16, 1024), descriptor(keys, 16, 1024));
#pragma unroll
        for (int kk = 1; kk < D / 16; ++kk) {
            const unsigned offset = (kk / 4) * HALF_BYTES + (kk % 4) * 32;
            wgmma_shared<true>(s, descriptor(q_rows + offset, 16, 1024), descriptor(keys + offset, 16, 1024));
        }
        wgmma_commit();
    };

    // Masks the scores of `tile` in s and turns them into unnormalised probabilities (online softmax on
    // raw scores, the scale folded into the exponent); the factor that O must be rescaled by goes to rescales.
    auto softmax = [&](int tile) {
        const int key0 = (first_tile + tile) * BLOCK_N;
        // Accumulator element 4j + 2i + e is row i (of this thread's two), key key0 + 8j + 2(lane%4) + e.
        if (key0 + BLOCK_N > first_masked_key || key0 + BLOCK_N > seq_len || key_valid != nullptr || positions != nullptr) {
#pragma unroll
            for (int j = 0; j < 16; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int key = key0 + 8 * j + 2 * (lane % 4) + e;
                    const bool valid = key < seq_len && (key_valid == nullptr || key_valid[sequence + key]);
#pragma unroll
                    for (int i = 0; i < 2; ++i) {
                        if (!valid || key > position[i] || key < first[i]) s[4 * j + 2 * i + e] = negative_infinity();
                    }
                }
            }
        }
        // Online softmax on raw scores; the scale is folded into the exponent.
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float tile_max = negative_infinity();
#pragma unroll
            for (int j = 0; j < 16; ++j) tile_max = fmaxf(tile_max, fmaxf(s[4 * j + 2 * i], s[4 * j + 2 * i + 1]));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
            const float new_max = fmaxf(row_max[i], tile_max);
            // While a row has seen no visible key its max is -inf; subtracting 0 keeps exp2 at 0, not NaN.
            const float shift = new_max == negative_infinity() ? 0.f : new_max * scale_log2;
            const float rescale = fast_exp2(row_max[i] * scale_log2 - shift);
            row_max[i] = new_max;
            float sum = 0.f;
#pragma unroll
            for (int j = 0; j < 16; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float& x = s[4 * j + 2 * i + e];
                    x = fast_exp2(fmaf(x, scale_log2, -shift));
                    sum += x;
                }
            }
            row_sum[i] = row_sum[i] * rescale + sum;
            rescales[i] = rescale;
        }
    };

    // O *= rescales, and the probabilities in s as the bf16 A fragments of P V.
    auto rescale_and_pack = [&]() {
#pragma unroll
        for (int j = 0; j < 16; ++j) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                o[4 * j + 2 * i] *= rescales[i];
                o[4 * j + 2 * i + 1] *= rescales[i];
            }
        }
        pack_fragments(p, s);
    };

    // One pipeline step, with P of tile `tile` in p: issue the scores of tile + 1 (unless this is the last
    // tile), then O += P V for this tile; the softmax of tile + 1 runs while P V is on the tensor cores.
    // `next` is a constant at each call, so that the inlined branches fold away: a wgmma issued under a
    // run-time branch makes ptxas serialise every wgmma of the kernel (warning C7515).
    auto step = [&](int tile, bool next) {
        if (next) {
            wait_for_tile(full + 8 * ((tile + 1) % STAGES), (tile + 1) / STAGES & 1);
            issue_scores(tile + 1);
        }
        // O += P V: 16 keys per step (2048 bytes of V rows); the two column halves are 16 KB apart.
        const unsigned values = k_tile(tile) + TILE_BYTES;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
            wgmma_registers(o, p[kk], descriptor(values + kk * 2048, HALF_BYTES, 1024));
        }
        wgmma_commit();
        if (next) {
            wgmma_wait<1>();  // the scores of tile + 1
            pin(s);
            softmax(tile + 1);
        }
        wgmma_wait<0>();
        pin(o);
        // This warp is done with the stage's K (scores, waited for earlier) and V.
        release_stage(empty, tile % STAGES, lane);
        if (next) rescale_and_pack();
    };

    wait_for_tile(q_full, 0);
    wait_for_tile(full, 0);
    issue_scores(0);
    wgmma_wait<0>();
    pin(s);
    softmax(0);
    rescale_and_pack();
    for (int tile = 0; tile + 1 < tiles; ++tile) step(tile, true);
    step(tiles - 1, false);

    // Each thread summed only its own columns: add the quad's partial sums, then normalise and store.
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float total = row_sum[i];
        total += __shfl_xor_sync(0xffffffffu, total, 1);
        total += __shfl_xor_sync(0xffffffffu, total, 2);
        const int packed = row0 + warpgroup * 64 + warp * 16 + lane / 4 + 8 * i;
        if (packed >= packed_rows) continue;
        const float inverse = total > 0.f ? 1.f / total : 0.f;
        const long long row = (sequence + packed / group) * q_heads + kv_head * group + packed % group;
        if (lse != nullptr && lane % 4 == 0) {
            lse[row] = total > 0.f ? (row_max[i] * scale_log2 + __log2f(total)) * 0.6931471805599453f : negative_infinity();
        }
        unsigned* destination = reinterpret_cast<unsigned*>(out + row * D);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            destination[4 * j + lane % 4] = pack_bf16(o[4 * j + 2 * i] * inverse, o[4 * j + 2 * i + 1] * inverse);
        }
    }
}
