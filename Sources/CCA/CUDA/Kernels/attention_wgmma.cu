// attention_wgmma.cu: flash attention for bfloat16 tensors with head dim 128 or 64 on Hopper's warpgroup tensor
// cores (wgmma, sm_90a only), causal or not, with grouped KV heads, an optional key padding mask and packed
// documents.
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
// up to 240), each owning 64 of the block's 128 packed rows, and walk key tiles of BLOCK_N. Q, K and V tiles
// live in shared memory in the 128-byte-swizzle layout that wgmma descriptors read (wgmma.cuh): a tile is
// D / 64 column halves of [rows][64 bf16] (at d = 64 a row is exactly one swizzle row), and the 16-byte chunk
// c of row r is stored at chunk c ^ (r % 8). K/V tiles are handed over through STAGES mbarrier stages, with
// no block-wide barrier in the loop: the producer waits on empty[stage] (one arrival per consumer warp once
// its P V of the stage's tile is done), copies K and V into the stage and arms full[stage] with
// cp.async.mbarrier.arrive (due when its copies land); a consumer waits on full[stage] and fences the
// async proxy before its wgmma read the tile. So the producer runs up to STAGES tiles ahead and the two
// consumer warpgroups drift freely against each other. S = Q K^T takes D / 16 wgmma m64nBLOCK_Nk16 (both
// operands K-major from shared memory); P V takes BLOCK_N / 16 m64nDk16 (P from registers: the accumulator
// layout of two adjacent 8-key column tiles is the A layout of one 16-key step; V from shared memory as an
// N-major B operand). The warpgroup's steps are software-pipelined (as FlashAttention-3) so that the tensor
// cores work during the softmax: with P of tile j in registers it issues the scores of tile j+1 and then
// P V for tile j, waits for the scores only, and applies the mask and the online softmax (exp2, running max
// and sum per row) to them while P V runs; O is rescaled and the new P packed once P V is done.
#include "common.cuh"
#include "wgmma.cuh"
#include "documents.cuh"
#include "attention.cuh"

// Built with -DHEAD_DIM_QK=-DHEAD_DIM_V= 128 (the default) or 64.
static_assert(DK == DV && (DK == 128 || DK == 64), "head dims 128 or 64, equal");
constexpr int D = DK;
constexpr int BLOCK_M = 128, THREADS = 384, PRODUCER_THREADS = 128;  // a producer and two consumer warpgroups
// Key tiles: 128 at d = 128; 192 at d = 64, where a tile's products are half as long for the same softmax, so
// that each barrier, row-max exchange and O rescale serves more work (S is then 96 floats a thread, P 48
// registers and O 32: with the next tile's S they still fit under the consumers' 240).
constexpr int BLOCK_N = D == 128 ? 128 : 192;
// K/V stages in flight: as many as the shared memory holds (3 of 64 KB at d = 128, 4 of 48 KB at d = 64).
constexpr int STAGES = D == 128 ? 3 : 4;
constexpr int Q_BYTES = BLOCK_M * D * 2, KV_BYTES = BLOCK_N * D * 2;  // a Q tile; a K (or V) tile
// Shared memory: Q, then STAGES x (K, V), and 1024 bytes more so that the base can be aligned to a swizzle
// atom; the host's launch passes this size (225 KB at d = 128, 209 KB at d = 64); the mbarriers are static.
constexpr int SHARED_BYTES = 1024 + Q_BYTES + STAGES * 2 * KV_BYTES;
static_assert(SHARED_BYTES <= 227 * 1024, "shared memory");

extern "C" __global__ void __launch_bounds__(THREADS, 1) attention_forward(
    const bf16* __restrict__ q,                 // [B, S, Hq, D]
    const bf16* __restrict__ k,                 // [B, S, Hkv, D]
    const bf16* __restrict__ v,                 // [B, S, Hkv, D]
    bf16* __restrict__ out,                     // [B, S, Hq, D]
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
    auto k_tile = [&](int tile) { return base + Q_BYTES + 2 * KV_BYTES * (tile % STAGES); };

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
        copy_rows<BLOCK_M, D, PRODUCER_THREADS>(q_tile, q, [&](int row) -> const bf16* {
            const int packed = row0 + row;
            return packed < packed_rows
                ? q + ((sequence + packed / group) * q_heads + kv_head * group + packed % group) * D : nullptr;
        });
        barrier_arrive_on_loads(q_full);
#pragma unroll 1
        for (int tile = 0; tile < tiles; ++tile) {
            const int stage = tile % STAGES, key0 = (first_tile + tile) * BLOCK_N;
            if (tile >= STAGES) barrier_wait(empty + 8 * stage, (tile / STAGES - 1) & 1);
            copy_rows<BLOCK_N, D, PRODUCER_THREADS>(k_tile(tile), k, head_rows<D>(k, sequence, key0, seq_len, kv_heads, kv_head));
            copy_rows<BLOCK_N, D, PRODUCER_THREADS>(k_tile(tile) + KV_BYTES, v,
                                                    head_rows<D>(v, sequence, key0, seq_len, kv_heads, kv_head));
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

    float o[D / 2] = {}, s[BLOCK_N / 2], rescales[2];
    unsigned p[BLOCK_N / 16][4];
    float row_max[2] = {negative_infinity(), negative_infinity()}, row_sum[2] = {0.f, 0.f};
    const unsigned q_rows = q_tile + warpgroup * 64 * 128;

    // Issues S = Q K^T for a tile.
    auto issue_scores = [&](int tile) {
        wgmma_fence();
        scores<BLOCK_M, BLOCK_N, D>(s, q_rows, k_tile(tile));
        wgmma_commit();
    };

    // Masks the scores of `tile` in s and turns them into unnormalised probabilities (online softmax on
    // raw scores, the scale folded into the exponent); the factor that O must be rescaled by goes to rescales.
    auto softmax = [&](int tile) {
        const int key0 = (first_tile + tile) * BLOCK_N;
        // Accumulator element 4j + 2i + e is row i (of this thread's two), key key0 + 8j + 2(lane%4) + e.
        if (key0 + BLOCK_N > first_masked_key || key0 + BLOCK_N > seq_len || key_valid != nullptr || positions != nullptr) {
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; ++j) {
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
            for (int j = 0; j < BLOCK_N / 8; ++j) tile_max = fmaxf(tile_max, fmaxf(s[4 * j + 2 * i], s[4 * j + 2 * i + 1]));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
            const float new_max = fmaxf(row_max[i], tile_max);
            // While a row has seen no visible key its max is -inf; subtracting 0 keeps exp2 at 0, not NaN.
            const float shift = new_max == negative_infinity() ? 0.f : new_max * scale_log2;
            const float rescale = fast_exp2(row_max[i] * scale_log2 - shift);
            row_max[i] = new_max;
            float sum = 0.f;
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; ++j) {
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
        for (int j = 0; j < D / 8; ++j) {
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
        // O += P V: 16 keys per step, V N-major.
        wgmma_fence();
        accumulate<BLOCK_N>(o, p, k_tile(tile) + KV_BYTES);
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
        const long long row = (sequence + packed / group) * q_heads + kv_head * group + packed % group;
        if (lse != nullptr && lane % 4 == 0) {
            lse[row] = total > 0.f ? (row_max[i] * scale_log2 + __log2f(total)) * 0.6931471805599453f : negative_infinity();
        }
        store_row(o, i, out + row * D, total > 0.f ? 1.f / total : 0.f, lane);
    }
}
