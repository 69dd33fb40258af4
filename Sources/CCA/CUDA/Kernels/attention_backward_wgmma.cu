// attention_backward_wgmma.cu: the attention backward pass for bfloat16 tensors with head dim 128 or 64 on
// Hopper's warpgroup tensor cores (wgmma, sm_90a only): causal block skipping, grouped KV heads, an optional
// key padding mask, packed documents. Same function, inputs and GQA packing as attention_backward_mma.cu
// (which serves the other head dims): P = exp(scale * q.k - lse) on visible keys, dP = dO v^T,
// dZ = P * (dP - delta), dv = P^T dO, dk = scale * dZ^T q, dq = scale * dZ k; P is recomputed from lse,
// nothing S^2 is stored. One kernel in the FlashAttention-3 layout: each block owns 128 keys and streams the
// query rows past them, so S and dP are formed once per (row, key) pair (five products, not the seven of a
// separate dq pass); dk and dv stay in registers, and each tile's dq share is added into a float32
// accumulator in global memory (`dq_sum`, zeroed before; attention_backward_prepare.cu turns it into dq).
//
// attention_backward: grid (Hkv, ceil(S / 128) * parts, B) (the heads of a block of keys run together, so the
// heaviest causal blocks, the first keys', start first for every head), 384 threads, warp-specialised as the forward
// (attention_wgmma.cu): warpgroup 0 copies tiles with cp.async into the 128-byte-swizzle layout (wgmma.cuh)
// and hands them over through mbarriers (full[stage] when a stage's copies land, empty[stage] when the 8
// consumer warps are done with it); warpgroups 1 and 2 compute. K and V of the block's 128 keys stay in
// shared memory (each consumer warpgroup owns 64 keys); tiles of ROW_TILE packed query rows (64 at d = 128, 128
// at d = 64; q, dO and the rows' lse and delta) stream through STAGES stages, from the first tile whose
// positions see the block's keys (causal) to the end of the last key's document. Per tile a warpgroup:
//   1. S^T = K q^T and dP^T = V dO^T for its 64 keys (m64nROW_TILEk16, both operands K-major in shared memory);
//      P^T and dZ^T in the accumulators, formed column by column; dZ^T (bf16) to shared memory, where the two
//      warpgroups' halves make the tile's [128 keys][ROW_TILE rows];
//   2. after a barrier of the two warpgroups: dq_tile = dZ K over the 128 keys for its 64 of the 128 channels
//      (d = 128) or its 64 of the 128 rows (d = 64) (m64n64k16, both operands MN-major in shared memory), then
//      dv += P^T dO (A from registers) and dk += dZ^T q (A its keys of dZ^T in shared memory), B the tile rows
//      N-major (m64nDk16);
//   3. once dq_tile lands, adds it into dq_sum (red.global.add.v2.f32) while dk (and at d = 128 dv) runs, and
//      issues the next tile's S^T and dP^T behind them, so that the tensor cores have work queued.
// With parts > 1, `parts` blocks share a block of keys, each taking a run of its row tiles, and add dk and dv
// into float32 sums too: so that short or few-headed shapes fill the GPU (a causal grid of one wave otherwise
// waits for its first block, which has all the rows).
// Each warpgroup holds dk and dv (64 x D floats each), the tile's S^T and dP^T (64 x ROW_TILE) and dq_tile
// (64 x 64), never all at once: dq_tile is gone before the next S^T and dP^T are issued (and at d = 64 so is
// P^T, whose registers dv reads: dv is waited for with dq_tile), and dZ^T is read by its products from shared
// memory, not registers (ptxas: no serialised wgmma, no consumer spills). dZ^T is double-buffered: a
// warpgroup writes tile t + 1's half while the other may still read tile t's in its step 2.
// Shared memory (dynamic, aligned up to a 1024-byte swizzle atom): at most SHARED_BYTES, what the host gives.
#include "common.cuh"
#include "wgmma.cuh"
#include "documents.cuh"
#include "attention.cuh"

// Built with -DHEAD_DIM_QK=-DHEAD_DIM_V= 128 (the default) or 64.
static_assert(DK == DV && (DK == 128 || DK == 64), "head dims 128 or 64, equal");
constexpr int D = DK, THREADS = 384, PRODUCER_THREADS = 128;
// Blocks of 128 keys; streamed tiles of 64 query rows at d = 128, of 128 at d = 64, where the products of a
// tile are half as long: S^T and dP^T become m64n128 (fewer shared-memory bytes per product), and the two
// warpgroups split dq_tile by rows rather than by channels, so each (row, block of keys) pair adds its dq
// share into dq_sum once (split by keys, as 64 rows would have it, each warpgroup adds its own 64 keys' share
// of all 64 channels: twice the float32 additions).
constexpr int BLOCK = 128, ROW_TILE = D == 128 ? 64 : 128, STAGES = 3;
static_assert(STAGES >= 2, "the next tile loads while this one is used");
constexpr int BLOCK_BYTES = BLOCK * D * 2, ROW_TILE_BYTES = ROW_TILE * D * 2;
// dZ^T of a tile, [BLOCK keys][ROW_TILE rows] bf16 in ROW_TILE / 64 column halves of [BLOCK][64], swizzled as
// the other tiles: a key's 64 rows of a half are one 128-byte swizzle row.
constexpr int DZ_BYTES = BLOCK * ROW_TILE * 2, DZ_HALF_BYTES = BLOCK * 128;
// Which dimension of dq_tile (ROW_TILE rows x D channels) the two warpgroups split, 64 each.
constexpr bool SPLIT_ROWS = ROW_TILE == 128;
static_assert(2 * ROW_TILE % PRODUCER_THREADS == 0, "the producer copies the rows' lse and delta in whole rounds");
static_assert(SPLIT_ROWS != (D == 128), "the warpgroups split dq_tile's rows or its channels");
constexpr int SHARED_BYTES = 200 * 1024;

// The two score-like products of a streamed tile, each its own commit group: s = S_A . T^T, then dp = P_A . U^T,
// where T is the tile at `stage` and U the one right after it (q then dO, or K then V). S_A and P_A are the
// warpgroup's 64 resident rows (K and V, or q and dO) in tiles of BLOCK rows.
template <int B_ROWS>
__device__ __forceinline__ void issue_score_products(float (&s)[B_ROWS / 2], float (&dp)[B_ROWS / 2], unsigned s_rows,
                                                     unsigned dp_rows, unsigned stage) {
    wgmma_fence();
    scores<BLOCK, B_ROWS, D>(s, s_rows, stage);
    wgmma_commit();
    scores<BLOCK, B_ROWS, D>(dp, dp_rows, stage + B_ROWS * D * 2);
    wgmma_commit();
}

// Two floats from shared memory.
__device__ __forceinline__ float2 load_shared_pair(unsigned address) {
    float2 pair;
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(pair.x), "=f"(pair.y) : "r"(address) : "memory");
    return pair;
}

// Writes this thread's dZ^T fragments (the A registers of the dk product) into a tile's [BLOCK keys][ROW_TILE rows]
// layout, `keys` being the warpgroup's first key row: register r of step kk holds key 16 warp + lane/4 + 8 (r % 2)
// (so key % 8 is lane / 4) and rows 16 kk + 8 (r / 2) + 2 (lane % 4) + {0, 1}, one word of chunk 2 kk + r / 2
// (chunks 8 to 15, rows 64 to 127, in the second column half). A warp's 32 words of one register land in 32
// different banks.
__device__ __forceinline__ void store_transposed(unsigned keys, const unsigned (&dz)[ROW_TILE / 16][4], int warp, int lane) {
#pragma unroll
    for (int kk = 0; kk < ROW_TILE / 16; ++kk) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int key = 16 * warp + lane / 4 + 8 * (r % 2), chunk = 2 * kk + r / 2;
            const unsigned address = keys + (chunk / 8) * DZ_HALF_BYTES + key * 128 + (((chunk % 8) ^ (lane / 4)) * 16) + 4 * (lane % 4);
            asm volatile("st.shared.b32 [%0], %1;" :: "r"(address), "r"(dz[kk][r]) : "memory");
        }
    }
}

// dq_tile (64 rows x 64 channels) = dZ . K over the block's keys: A is 64 rows of dZ^T in shared memory (a
// column half; MN-major, 16 keys, 2048 bytes, per step), B 64 channels of the K tile (a column half, MN-major
// too). Both are one 64-element swizzle atom across, so the leading byte offset is never read.
__device__ __forceinline__ void dq_product(float (&acc)[32], unsigned dz, unsigned k_half) {
    wgmma_shared<false, true, true>(acc, descriptor(dz, BLOCK * 128, 1024), descriptor(k_half, BLOCK * 128, 1024));
#pragma unroll
    for (int kk = 1; kk < BLOCK / 16; ++kk) {
        wgmma_shared<true, true, true>(acc, descriptor(dz + kk * 2048, BLOCK * 128, 1024),
                                       descriptor(k_half + kk * 2048, BLOCK * 128, 1024));
    }
}

// dk (64 keys x D channels) += dZ^T . q over the tile's rows: A the warpgroup's 64 key rows of dZ^T in
// shared memory (K-major: 16 rows, 32 bytes, per step; rows 64 to 127 in the second half), B the q tile N-major
// (as in `accumulate`). Reading dZ^T from shared memory rather than registers frees its registers while the
// product runs.
__device__ __forceinline__ void dk_product(float (&acc)[D / 2], unsigned dz_keys, unsigned q_rows) {
#pragma unroll
    for (int kk = 0; kk < ROW_TILE / 16; ++kk) {
        wgmma_shared<true, false, true>(acc, descriptor(dz_keys + (kk / 4) * DZ_HALF_BYTES + (kk % 4) * 32, 16, 1024),
                                        descriptor(q_rows + kk * 2048, ROW_TILE * 128, 1024));
    }
}

// Adds row i of this thread's two of a 64 x (N / 2) accumulator (dq_tile, or dk or dv) into the float row at
// `row` (the first channel the accumulator covers): element 4j + 2i + e is channel 8j + 2 (lane % 4) + e.
template <int N>
__device__ __forceinline__ void add_row(const float (&acc)[N], int i, float* row, int lane) {
#pragma unroll
    for (int j = 0; j < N / 4; ++j) {
        asm volatile("red.global.add.v2.f32 [%0], {%1, %2};"
                     :: "l"(row + 8 * j + 2 * (lane % 4)), "f"(acc[4 * j + 2 * i]), "f"(acc[4 * j + 2 * i + 1]) : "memory");
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attention_backward(
    const bf16* __restrict__ q,                 // [B, S, Hq, 128]
    const bf16* __restrict__ k,                 // [B, S, Hkv, 128]
    const bf16* __restrict__ v,                 // [B, S, Hkv, 128]
    const bf16* __restrict__ d_out,             // [B, S, Hq, 128]
    const float* __restrict__ lse,              // [B, S, Hq], natural log
    const float* __restrict__ delta,            // [B, S, Hq]
    float* __restrict__ dq_sum,                 // [B, S, Hq, 128], zeroed: dq / scale is added in
    bf16* __restrict__ dk,                      // [B, S, Hkv, 128], when parts == 1
    bf16* __restrict__ dv,                      // [B, S, Hkv, 128], when parts == 1
    float* __restrict__ dk_sum,                 // [B, S, Hkv, 128], zeroed, when parts > 1: dk / scale is added in
    float* __restrict__ dv_sum,                 // [B, S, Hkv, 128], zeroed, when parts > 1: dv is added in
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale, int causal,
    int parts)                                  // blocks per block of keys, each over its share of the row tiles
{
    // Per stage: the q tile, the dO tile, then the rows' lse and delta (ROW_TILE floats each), padded so that every
    // tile starts on a 1024-byte swizzle atom (the hardware applies the swizzle to address bits).
    constexpr int STAGE_BYTES = 2 * ROW_TILE_BYTES + 1024;
    static_assert(1024 + 2 * BLOCK_BYTES + STAGES * STAGE_BYTES + 2 * DZ_BYTES <= SHARED_BYTES, "shared memory");
    extern __shared__ __align__(16) unsigned char shared[];
    __shared__ __align__(8) unsigned long long barriers[2 * STAGES + 1];
    const unsigned full = shared_address(barriers), empty = full + 8 * STAGES, kv_full = full + 16 * STAGES;
    const unsigned base = (shared_address(shared) + 1023) & ~1023u;
    const unsigned k_tile = base, v_tile = base + BLOCK_BYTES;
    auto stage_address = [&](int tile) { return base + 2 * BLOCK_BYTES + (tile % STAGES) * STAGE_BYTES; };
    auto dz_address = [&](int tile) { return base + 2 * BLOCK_BYTES + STAGES * STAGE_BYTES + (tile % 2) * DZ_BYTES; };

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.y / parts * BLOCK, part = blockIdx.y % parts, kv_head = blockIdx.x;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const int keys_first_row = causal ? min(key0 * group, packed_rows) / ROW_TILE * ROW_TILE : 0;
    // Rows past the document of the block's last key see none of its keys. This block takes its part of the
    // row tiles that see the keys (none, when there are fewer tiles than parts); producer and consumers agree
    // on them, as both compute them here.
    const int rows_end = row_positions == nullptr ? packed_rows
        : document_end(row_positions, min(key0 + BLOCK, seq_len) - 1, seq_len) * group;
    const int keys_tiles = (rows_end - keys_first_row + ROW_TILE - 1) / ROW_TILE;
    const int first_tile = part * keys_tiles / parts, tiles = (part + 1) * keys_tiles / parts - first_tile;
    if (tiles == 0) return;
    const int first_row = keys_first_row + first_tile * ROW_TILE;

    init_pipeline<STAGES>(full, empty, kv_full, PRODUCER_THREADS);

    if (threadIdx.x < PRODUCER_THREADS) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
        copy_rows<BLOCK, D, PRODUCER_THREADS>(k_tile, k, head_rows<D>(k, sequence, key0, seq_len, kv_heads, kv_head));
        copy_rows<BLOCK, D, PRODUCER_THREADS>(v_tile, v, head_rows<D>(v, sequence, key0, seq_len, kv_heads, kv_head));
        barrier_arrive_on_loads(kv_full);
#pragma unroll 1
        for (int tile = 0; tile < tiles; ++tile) {
            const int stage = tile % STAGES, row0 = first_row + tile * ROW_TILE;
            if (tile >= STAGES) barrier_wait(empty + 8 * stage, (tile / STAGES - 1) & 1);
            auto query_row = [&](const bf16* base_tensor) {
                return [=](int row) -> const bf16* {
                    const int packed = row0 + row;
                    return packed < packed_rows ? base_tensor + row_index(packed) * D : nullptr;
                };
            };
            const unsigned stage_start = stage_address(tile);
            copy_rows<ROW_TILE, D, PRODUCER_THREADS>(stage_start, q, query_row(q));
            copy_rows<ROW_TILE, D, PRODUCER_THREADS>(stage_start + ROW_TILE_BYTES, d_out, query_row(d_out));
            // The rows' lse, then their delta: ROW_TILE floats each.
#pragma unroll
            for (int n = 0; n < 2 * ROW_TILE / PRODUCER_THREADS; ++n) {
                const unsigned i = threadIdx.x + n * PRODUCER_THREADS;
                const int packed = row0 + i % ROW_TILE;
                const float* source = i < ROW_TILE ? lse : delta;
                copy_float(stage_start + 2 * ROW_TILE_BYTES + i * 4, packed < packed_rows ? source + row_index(packed) : nullptr, source);
            }
            barrier_arrive_on_loads(full + 8 * stage);
        }
        asm volatile("cp.async.wait_all;" ::: "memory");
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
    const int warpgroup = threadIdx.x / 128 - 1, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
    const float scale_log2 = scale * LOG2E;

    // This thread's two keys: accumulator rows lane/4 and lane/4 + 8 of its warp.
    // first_row_seeing: the first packed row that sees the key (key * g causal, 0 otherwise; never: INT_MAX).
    int key[2], first_row_seeing[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        key[i] = key0 + warpgroup * 64 + warp * 16 + lane / 4 + 8 * i;
        const bool attended = key[i] < seq_len && (key_valid == nullptr || key_valid[sequence + key[i]]);
        first_row_seeing[i] = !attended ? 0x7fffffff : causal ? key[i] * group : 0;
    }
    const unsigned k_rows = k_tile + warpgroup * 64 * 128, v_rows = v_tile + warpgroup * 64 * 128;
    float dk_acc[D / 2] = {}, dv_acc[D / 2] = {}, s[ROW_TILE / 2], dp[ROW_TILE / 2], dq_acc[32];
    unsigned p_fragments[ROW_TILE / 16][4], dz_fragments[ROW_TILE / 16][4];

    // S^T and dP^T of a tile.
    auto issue_scores = [&](int tile) { issue_score_products<ROW_TILE>(s, dp, k_rows, v_rows, stage_address(tile)); };
    // One pipeline step, with S^T and dP^T of `tile` in flight: P^T and dZ^T once both land; once both
    // warpgroups wrote dZ^T, dq_tile, then dv and dk are issued, and dq_tile goes out to global memory while
    // dv and dk run; then the next tile's products (unless this is the last) are issued before dv and dk are
    // waited for. (Issuing them before dq_tile's adds would keep S^T and dP^T, dq_tile, dk and dv alive at
    // once: spills.)
    // `next` is a constant at each call, so that the inlined branches fold away (a wgmma under a run-time
    // branch makes ptxas serialise every wgmma, warning C7515).
    auto step = [&](int tile, bool next) {
        const int row0 = first_row + tile * ROW_TILE;
        const unsigned q_stage = stage_address(tile), do_stage = q_stage + ROW_TILE_BYTES;
        const unsigned row_lse = q_stage + 2 * ROW_TILE_BYTES, row_delta = row_lse + ROW_TILE * 4;
        // Element 4j + 2i + e: key key[i], packed row row0 + 8j + 2(lane % 4) + e, which sees the key from
        // first_row_seeing on (no division) and from its document's start, when it is a row at all, and when its
        // lse is finite. P^T and dZ^T column by column, so that each column's S^T and dP^T registers die as it
        // is done (a tile's S^T, dP^T, lse and delta, dk and dv at once would not fit at d = 64).
        wgmma_wait<0>();
        pin(s);
        pin(dp);
#pragma unroll
        for (int j = 0; j < ROW_TILE / 8; ++j) {
            const int column = 8 * j + 2 * (lane % 4);
            const float2 shifts = load_shared_pair(row_lse + column * 4), dots = load_shared_pair(row_delta + column * 4);
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int packed = row0 + column + e;
                const float row_shift = (e == 0 ? shifts.x : shifts.y) * LOG2E;
                const bool row_sees = packed < packed_rows && row_shift != negative_infinity();
                // Packed documents: a row does not see keys before its document's start.
                const int start = row_positions != nullptr && packed < packed_rows ? document_start(row_positions, packed / group) : 0;
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int index = 4 * j + 2 * i + e;
                    const bool visible = row_sees && first_row_seeing[i] <= packed && key[i] >= start;
                    s[index] = visible ? fast_exp2(fmaf(s[index], scale_log2, -row_shift)) : 0.f;
                    dp[index] = s[index] * (dp[index] - (e == 0 ? dots.x : dots.y));
                }
            }
        }
        pack_fragments(p_fragments, s);
        pack_fragments(dz_fragments, dp);
        const unsigned dz_tile = dz_address(tile), dz_keys = dz_tile + warpgroup * 64 * 128;
        store_transposed(dz_keys, dz_fragments, warp, lane);
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the stores, before wgmma reads them
        asm volatile("bar.sync 1, 256;" ::: "memory");  // and the other warpgroup's half
        wgmma_fence();
        // This warpgroup's 64 rows (a column half of dZ^T) or 64 channels (a column half of K).
        dq_product(dq_acc, dz_tile + (SPLIT_ROWS ? warpgroup * DZ_HALF_BYTES : 0), k_tile + (SPLIT_ROWS ? 0 : warpgroup * BLOCK * 128));
        wgmma_commit();
        accumulate<ROW_TILE>(dv_acc, p_fragments, do_stage);
        if constexpr (SPLIT_ROWS) {
            // dv apart, so that waiting for it with dq_tile frees P^T before the next tile's S^T and dP^T (64 floats
            // each here) are issued.
            wgmma_commit();
        }
        dk_product(dk_acc, dz_keys, q_stage);
        wgmma_commit();
        // dq_tile goes out while dk (and at d = 128 dv) is in flight; its rows are accumulator rows 16 warp + lane/4 + 8i.
        wgmma_wait<1>();
        pin(dq_acc);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int packed = row0 + (SPLIT_ROWS ? warpgroup * 64 : 0) + warp * 16 + lane / 4 + 8 * i;
            if (packed < packed_rows) add_row(dq_acc, i, dq_sum + row_index(packed) * D + (SPLIT_ROWS ? 0 : warpgroup * 64), lane);
        }
        if (next) {
            wait_for_tile(full + 8 * ((tile + 1) % STAGES), ((tile + 1) / STAGES) & 1);
            issue_scores(tile + 1);
            wgmma_wait<2>();
        } else {
            wgmma_wait<0>();
        }
        pin(dv_acc);
        pin(dk_acc);
        release_stage(empty, tile % STAGES, lane);
    };

    wait_for_tile(kv_full, 0);
    wait_for_tile(full, 0);
    issue_scores(0);
    for (int tile = 0; tile + 1 < tiles; ++tile) step(tile, true);
    step(tiles - 1, false);

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (key[i] >= seq_len) continue;
        const long long row = ((sequence + key[i]) * kv_heads + kv_head) * D;
        if (parts == 1) {
            store_row(dk_acc, i, dk + row, scale, lane);
            store_row(dv_acc, i, dv + row, 1.f, lane);
        } else {
            add_row(dk_acc, i, dk_sum + row, lane);
            add_row(dv_acc, i, dv_sum + row, lane);
        }
    }
}
