// attention_backward_wgmma.cu: the attention backward pass for bfloat16 tensors with head dim 128 on
// Hopper's warpgroup tensor cores (wgmma, sm_90a only): causal block skipping, grouped KV heads, an optional
// key padding mask. Same function, inputs and GQA packing as attention_backward_mma.cu (which serves the
// other head dims): P = exp(scale * q.k - lse) on visible keys, dP = dO v^T, dZ = P * (dP - delta),
// dv = P^T dO, dk = scale * dZ^T q, dq = scale * dZ k; P is recomputed from lse, nothing S^2 is stored, and
// two kernels (keys in place, queries in place) avoid atomics.
//
// Both kernels: 384 threads, warp-specialised as the forward (attention_wgmma.cu): warpgroup 0 copies tiles
// with cp.async into the 128-byte-swizzle layout (wgmma.cuh) and hands them over through mbarriers
// (full[stage] when a stage's copies land, empty[stage] when the 8 consumer warps are done with it);
// warpgroups 1 and 2 compute, each on 64 rows of the resident block. Each warpgroup's steps are pipelined:
// the two score-like products of the next tile are issued before this tile's accumulating products are
// waited for. (Reading S while dP is still in flight, as the forward overlaps its softmax, makes ptxas
// serialise every wgmma here, warning C7514; so both are waited for together.)
//
// attention_backward_dkdv: grid (ceil(S / 128), Hkv, B). K and V of the block's 128 keys stay in shared
// memory (each consumer warpgroup owns 64 keys); tiles of 64 packed query rows (q, dO and the rows' lse and
// delta) stream through STAGES stages, from the first tile whose positions see the block's keys (causal) to
// the end. Per tile a warpgroup computes S^T = K q^T and dP^T = V dO^T (m64n64k16, both operands K-major in
// shared memory), forms P^T and dZ^T in the accumulators, and accumulates dv += P^T dO and dk += dZ^T q
// (m64n128k16, A from registers, B the tile rows N-major).
// attention_backward_dq: grid (ceil(S*g / 128), Hkv, B), heaviest row blocks first. q and dO of the block's
// 128 packed rows stay in shared memory; tiles of 64 keys (K and V) stream through STAGES stages up to the
// last key the block's rows see. Per tile: S = q K^T and dP = dO V^T (m64n64k16), then dZ in the
// accumulators, then dq += dZ K (m64n128k16, K N-major).
// Shared memory (dynamic, aligned up to a 1024-byte swizzle atom): at most SHARED_BYTES, what the host gives.
#include "common.cuh"
#include "wgmma.cuh"
#include "documents.cuh"

constexpr int D = 128, THREADS = 384, PRODUCER_THREADS = 128;
// Resident blocks of 128 rows; streamed tiles of 64 query rows (dk/dv) or 64 keys (dq). (With its two 64 x 128
// float accumulators the dk/dv kernel is short of registers at 64 rows and ptxas serialises its wgmma, warning
// C7512; tiles of 32 rows avoid that but measured 8% slower on the H200, so 64 it is.)
constexpr int BLOCK = 128, ROW_TILE = 64, KEY_TILE = 64, STAGES = 3;
static_assert(STAGES >= 2, "the next tile loads while this one is used");
constexpr int BLOCK_BYTES = BLOCK * D * 2, ROW_TILE_BYTES = ROW_TILE * D * 2, KEY_TILE_BYTES = KEY_TILE * D * 2;
constexpr int SHARED_BYTES = 200 * 1024;
constexpr float LOG2E = 1.4426950408889634f;

// The producer's copies of `ROWS` rows of 128 bf16 into a swizzled tile: thread t copies chunk t % 16 of
// rows t / 16 + 8i (all of one swizzle phase); `source(row)` is the row's address or null (zeros).
template <int ROWS, typename Source>
__device__ __forceinline__ void copy_rows(unsigned tile, const bf16* any_row, Source source) {
    const int chunk = threadIdx.x % 16, first_row = threadIdx.x / 16;
    const unsigned offset = swizzled<ROWS>(first_row, chunk);
#pragma unroll 4
    for (int row = first_row; row < ROWS; row += 8) {
        const bf16* row_start = source(row);
        copy_chunk(tile + offset + (row - first_row) * 128, row_start != nullptr ? row_start + chunk * 8 : nullptr, any_row);
    }
}

// S (64 x B_ROWS) = A . B^T over the 128 channels: A the warpgroup's 64 rows of a tile of A_ROWS rows, B a
// tile of B_ROWS rows, both K-major; steps 0-3 read the first column half, 4-7 the second.
template <int A_ROWS, int B_ROWS>
__device__ __forceinline__ void scores(float (&s)[B_ROWS / 2], unsigned a, unsigned b) {
    wgmma_shared<false>(s, descriptor(a, 16, 1024), descriptor(b, 16, 1024));
#pragma unroll
    for (int kk = 1; kk < D / 16; ++kk) {
        wgmma_shared<true>(s, descriptor(a + (kk / 4) * A_ROWS * 128 + (kk % 4) * 32, 16, 1024),
                           descriptor(b + (kk / 4) * B_ROWS * 128 + (kk % 4) * 32, 16, 1024));
    }
}

// The two score-like products of a streamed tile, each its own commit group: s = S_A . T^T, then dp = P_A . U^T,
// where T is the tile at `stage` and U the one right after it (q then dO, or K then V). S_A and P_A are the
// warpgroup's 64 resident rows (K and V, or q and dO) in tiles of BLOCK rows.
template <int B_ROWS>
__device__ __forceinline__ void issue_score_products(float (&s)[B_ROWS / 2], float (&dp)[B_ROWS / 2], unsigned s_rows,
                                                     unsigned dp_rows, unsigned stage) {
    wgmma_fence();
    scores<BLOCK, B_ROWS>(s, s_rows, stage);
    wgmma_commit();
    scores<BLOCK, B_ROWS>(dp, dp_rows, stage + B_ROWS * D * 2);
    wgmma_commit();
}

// Waits for the accumulating products just committed; first, unless this is the last tile (`next` false),
// issues the next tile's score products through `issue` (once its stage has landed), so that the tensor cores
// stay busy and only this tile's group is waited for.
template <int STAGES, typename Issue>
__device__ __forceinline__ void finish_products(bool next, int tile, unsigned full, Issue issue) {
    if (next) {
        wait_for_tile(full + 8 * ((tile + 1) % STAGES), ((tile + 1) / STAGES) & 1);
        issue(tile + 1);
        wgmma_wait<2>();
    } else {
        wgmma_wait<0>();
    }
}

// acc (64 x 128) += A . B: A the packed 64 x B_ROWS registers, B a tile of B_ROWS rows N-major (16 rows, 2048
// bytes, per step; the two column halves B_ROWS * 128 bytes apart).
template <int B_ROWS>
__device__ __forceinline__ void accumulate(float (&acc)[64], const unsigned (&a)[B_ROWS / 16][4], unsigned b) {
#pragma unroll
    for (int kk = 0; kk < B_ROWS / 16; ++kk) wgmma_registers(acc, a[kk], descriptor(b + kk * 2048, B_ROWS * 128, 1024));
}

// Stores the 64 x 128 accumulators of this thread's two rows (null: no row), times `factor`, as bf16.
__device__ __forceinline__ void store_rows(const float (&acc)[64], bf16* const (&rows)[2], float factor, int lane) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (rows[i] == nullptr) continue;
        unsigned* destination = reinterpret_cast<unsigned*>(rows[i]);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            destination[4 * j + lane % 4] = pack_bf16(acc[4 * j + 2 * i] * factor, acc[4 * j + 2 * i + 1] * factor);
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attention_backward_dkdv(
    const bf16* __restrict__ q,                 // [B, S, Hq, 128]
    const bf16* __restrict__ k,                 // [B, S, Hkv, 128]
    const bf16* __restrict__ v,                 // [B, S, Hkv, 128]
    const bf16* __restrict__ d_out,             // [B, S, Hq, 128]
    const float* __restrict__ lse,              // [B, S, Hq], natural log
    const float* __restrict__ delta,            // [B, S, Hq]
    bf16* __restrict__ dk,                      // [B, S, Hkv, 128]
    bf16* __restrict__ dv,                      // [B, S, Hkv, 128]
    const unsigned char* __restrict__ key_valid, // [B, S] or null: keys with 0 are never attended
    const int* __restrict__ positions,          // [B, S] or null: positions within packed documents (causal only)
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    // Per stage: the q tile, the dO tile, then the rows' lse and delta (ROW_TILE floats each), padded so that every
    // tile starts on a 1024-byte swizzle atom (the hardware applies the swizzle to address bits).
    constexpr int STAGE_BYTES = 2 * ROW_TILE_BYTES + 1024;
    static_assert(1024 + 2 * BLOCK_BYTES + STAGES * STAGE_BYTES <= SHARED_BYTES, "shared memory");
    extern __shared__ __align__(16) unsigned char shared[];
    __shared__ __align__(8) unsigned long long barriers[2 * STAGES + 1];
    const unsigned full = shared_address(barriers), empty = full + 8 * STAGES, kv_full = full + 16 * STAGES;
    const unsigned base = (shared_address(shared) + 1023) & ~1023u;
    unsigned char* const base_pointer = shared + (base - shared_address(shared));
    const unsigned k_tile = base, v_tile = base + BLOCK_BYTES;
    auto stage_address = [&](int tile) { return base + 2 * BLOCK_BYTES + (tile % STAGES) * STAGE_BYTES; };

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int key0 = blockIdx.x * BLOCK, kv_head = blockIdx.y;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    const int first_row = causal ? min(key0 * group, packed_rows) / ROW_TILE * ROW_TILE : 0;
    // Rows past the document of the block's last key see none of its keys; producer and consumers agree on
    // the count, as both compute it here.
    const int rows_end = row_positions == nullptr ? packed_rows
        : document_end(row_positions, min(key0 + BLOCK, seq_len) - 1, seq_len) * group;
    const int tiles = (rows_end - first_row + ROW_TILE - 1) / ROW_TILE;

    init_pipeline<STAGES>(full, empty, kv_full, PRODUCER_THREADS);

    if (threadIdx.x < PRODUCER_THREADS) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
        auto key_row = [&](const bf16* base_tensor) {
            return [=](int row) -> const bf16* {
                const int s = key0 + row;
                return s < seq_len ? base_tensor + ((sequence + s) * kv_heads + kv_head) * D : nullptr;
            };
        };
        copy_rows<BLOCK>(k_tile, k, key_row(k));
        copy_rows<BLOCK>(v_tile, v, key_row(v));
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
            copy_rows<ROW_TILE>(stage_start, q, query_row(q));
            copy_rows<ROW_TILE>(stage_start + ROW_TILE_BYTES, d_out, query_row(d_out));
            // The first ROW_TILE threads copy the rows' lse, the next ROW_TILE their delta.
            if (threadIdx.x < 2 * ROW_TILE) {
                const int packed = row0 + threadIdx.x % ROW_TILE;
                const float* source = threadIdx.x < ROW_TILE ? lse : delta;
                copy_float(stage_start + 2 * ROW_TILE_BYTES + threadIdx.x * 4,
                           packed < packed_rows ? source + row_index(packed) : nullptr, source);
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
    int key[2], key_times_group[2];
    bool key_visible[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        key[i] = key0 + warpgroup * 64 + warp * 16 + lane / 4 + 8 * i;
        key_times_group[i] = key[i] * group;
        key_visible[i] = key[i] < seq_len && (key_valid == nullptr || key_valid[sequence + key[i]]);
    }
    const unsigned k_rows = k_tile + warpgroup * 64 * 128, v_rows = v_tile + warpgroup * 64 * 128;
    float dk_acc[64] = {}, dv_acc[64] = {}, s[ROW_TILE / 2], dp[ROW_TILE / 2];
    unsigned p_fragments[ROW_TILE / 16][4], dz_fragments[ROW_TILE / 16][4];

    // S^T and dP^T of a tile.
    auto issue_scores = [&](int tile) { issue_score_products<ROW_TILE>(s, dp, k_rows, v_rows, stage_address(tile)); };
    // One pipeline step, with S^T and dP^T of `tile` in flight: P^T and dZ^T once both land, then dv and dk
    // are issued; the next tile's products (unless this is the last) are issued before waiting
    // for them, so the tensor cores stay busy. `next` is a constant at each call, so that the inlined branches
    // fold away (a wgmma under a run-time branch makes ptxas serialise every wgmma, warning C7515).
    auto step = [&](int tile, bool next) {
        const int row0 = first_row + tile * ROW_TILE;
        const unsigned q_stage = stage_address(tile), do_stage = q_stage + ROW_TILE_BYTES;
        const float* row_lse = reinterpret_cast<const float*>(base_pointer + (q_stage - base) + 2 * ROW_TILE_BYTES);
        const float* row_delta = row_lse + ROW_TILE;
        // Element 4j + 2i + e: key key[i], packed row row0 + 8j + 2(lane % 4) + e, which sees the key when
        // key * g <= packed (causal; no division), when it is a row at all, and when its lse is finite.
        wgmma_wait<0>();
        pin(s);
#pragma unroll
        for (int j = 0; j < ROW_TILE / 8; ++j) {
            const int column = 8 * j + 2 * (lane % 4);
            const float2 shifts = *reinterpret_cast<const float2*>(row_lse + column);
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int packed = row0 + column + e;
                const float row_shift = (e == 0 ? shifts.x : shifts.y) * LOG2E;
                const bool row_sees = packed < packed_rows && row_shift != negative_infinity();
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int index = 4 * j + 2 * i + e;
                    const bool visible = row_sees && key_visible[i] && (!causal || key_times_group[i] <= packed);
                    s[index] = visible ? fast_exp2(fmaf(s[index], scale_log2, -row_shift)) : 0.f;
                }
            }
        }
        // Packed documents: a row does not see keys before its document's start (a uniform branch, no wgmma in it).
        if (row_positions != nullptr) {
#pragma unroll
            for (int j = 0; j < ROW_TILE / 8; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int packed = row0 + 8 * j + 2 * (lane % 4) + e;
                    const int start = packed < packed_rows ? document_start(row_positions, packed / group) : 0;
#pragma unroll
                    for (int i = 0; i < 2; ++i) {
                        if (key[i] < start) s[4 * j + 2 * i + e] = 0.f;
                    }
                }
            }
        }
        pin(dp);
#pragma unroll
        for (int j = 0; j < ROW_TILE / 8; ++j) {
            const float2 dots = *reinterpret_cast<const float2*>(row_delta + 8 * j + 2 * (lane % 4));
#pragma unroll
            for (int e = 0; e < 2; ++e) {
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int index = 4 * j + 2 * i + e;
                    dp[index] = s[index] * (dp[index] - (e == 0 ? dots.x : dots.y));
                }
            }
        }
        pack_fragments(p_fragments, s);
        pack_fragments(dz_fragments, dp);
        wgmma_fence();
        accumulate<ROW_TILE>(dv_acc, p_fragments, do_stage);
        accumulate<ROW_TILE>(dk_acc, dz_fragments, q_stage);
        wgmma_commit();
        finish_products<STAGES>(next, tile, full, issue_scores);
        pin(dv_acc);
        pin(dk_acc);
        release_stage(empty, tile % STAGES, lane);
    };

    wait_for_tile(kv_full, 0);
    wait_for_tile(full, 0);
    issue_scores(0);
    for (int tile = 0; tile + 1 < tiles; ++tile) step(tile, true);
    step(tiles - 1, false);

    bf16* dk_rows[2];
    bf16* dv_rows[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const long long row = (sequence + key[i]) * kv_heads + kv_head;
        dk_rows[i] = key[i] < seq_len ? dk + row * D : nullptr;
        dv_rows[i] = key[i] < seq_len ? dv + row * D : nullptr;
    }
    store_rows(dk_acc, dk_rows, scale, lane);
    store_rows(dv_acc, dv_rows, 1.f, lane);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attention_backward_dq(
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
    const bf16* __restrict__ d_out, const float* __restrict__ lse, const float* __restrict__ delta,
    bf16* __restrict__ dq,                      // [B, S, Hq, 128]
    const unsigned char* __restrict__ key_valid,
    const int* __restrict__ positions,
    int seq_len, int q_heads, int kv_heads, float scale, int causal)
{
    static_assert(1024 + 2 * BLOCK_BYTES + STAGES * 2 * KEY_TILE_BYTES <= SHARED_BYTES, "shared memory");
    extern __shared__ __align__(16) unsigned char shared[];
    __shared__ __align__(8) unsigned long long barriers[2 * STAGES + 1];
    const unsigned full = shared_address(barriers), empty = full + 8 * STAGES, rows_full = full + 16 * STAGES;
    const unsigned base = (shared_address(shared) + 1023) & ~1023u;
    const unsigned q_tile = base, do_tile = base + BLOCK_BYTES;
    auto stage_address = [&](int tile) { return base + 2 * BLOCK_BYTES + (tile % STAGES) * 2 * KEY_TILE_BYTES; };

    const int group = q_heads / kv_heads, packed_rows = seq_len * group;
    const int row0 = (gridDim.x - 1 - blockIdx.x) * BLOCK, kv_head = blockIdx.y;
    const long long sequence = static_cast<long long>(blockIdx.z) * seq_len;
    auto row_index = [&](int packed) { return (sequence + packed / group) * q_heads + kv_head * group + packed % group; };
    const int* row_positions = positions == nullptr ? nullptr : positions + sequence;
    // Producer and consumers walk the same key tiles: first_tile + n for n in 0 ..< tiles, in stage n % STAGES.
    const BlockKeys keys = block_keys<KEY_TILE>(row_positions, row0, BLOCK, packed_rows, group, seq_len, causal);
    const int first_tile = keys.first_tile, tiles = keys.tiles;

    init_pipeline<STAGES>(full, empty, rows_full, PRODUCER_THREADS);

    if (threadIdx.x < PRODUCER_THREADS) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
        auto query_row = [&](const bf16* base_tensor) {
            return [=](int row) -> const bf16* {
                const int packed = row0 + row;
                return packed < packed_rows ? base_tensor + row_index(packed) * D : nullptr;
            };
        };
        copy_rows<BLOCK>(q_tile, q, query_row(q));
        copy_rows<BLOCK>(do_tile, d_out, query_row(d_out));
        barrier_arrive_on_loads(rows_full);
#pragma unroll 1
        for (int tile = 0; tile < tiles; ++tile) {
            const int stage = tile % STAGES;
            if (tile >= STAGES) barrier_wait(empty + 8 * stage, (tile / STAGES - 1) & 1);
            auto key_row = [&](const bf16* base_tensor) {
                return [=](int row) -> const bf16* {
                    const int s = (first_tile + tile) * KEY_TILE + row;
                    return s < seq_len ? base_tensor + ((sequence + s) * kv_heads + kv_head) * D : nullptr;
                };
            };
            copy_rows<KEY_TILE>(stage_address(tile), k, key_row(k));
            copy_rows<KEY_TILE>(stage_address(tile) + KEY_TILE_BYTES, v, key_row(v));
            barrier_arrive_on_loads(full + 8 * stage);
        }
        asm volatile("cp.async.wait_all;" ::: "memory");
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
    const int warpgroup = threadIdx.x / 128 - 1, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
    const float scale_log2 = scale * LOG2E;

    // This thread's two rows: position (-1 outside), lse in the exp2 domain, delta.
    int packed[2], position[2];
    float row_shift[2], row_dot[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        packed[i] = row0 + warpgroup * 64 + warp * 16 + lane / 4 + 8 * i;
        const bool inside = packed[i] < packed_rows;
        position[i] = !inside ? -1 : causal ? packed[i] / group : seq_len - 1;
        row_shift[i] = inside ? lse[row_index(packed[i])] * LOG2E : negative_infinity();
        row_dot[i] = inside ? delta[row_index(packed[i])] : 0.f;
        if (row_shift[i] == negative_infinity()) position[i] = -1;  // a row that sees no key has no gradient
    }
    const unsigned q_rows = q_tile + warpgroup * 64 * 128, do_rows = do_tile + warpgroup * 64 * 128;
    float dq_acc[64] = {}, s[KEY_TILE / 2], dp[KEY_TILE / 2];
    unsigned dz_fragments[KEY_TILE / 16][4];

    // S and dP of a tile.
    auto issue_scores = [&](int tile) { issue_score_products<KEY_TILE>(s, dp, q_rows, do_rows, stage_address(tile)); };
    // One pipeline step, as in the dk/dv kernel: dZ of `tile`, dq += dZ K issued, the next tile's products
    // issued before waiting.
    auto step = [&](int tile, bool next) {
        const int key0 = (first_tile + tile) * KEY_TILE;
        wgmma_wait<0>();
        pin(s);
        // Element 4j + 2i + e: row i of this thread's two, key key0 + 8j + 2(lane % 4) + e.
#pragma unroll
        for (int j = 0; j < KEY_TILE / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int key = key0 + 8 * j + 2 * (lane % 4) + e;
                const bool valid = key < seq_len && (key_valid == nullptr || key_valid[sequence + key]);
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int index = 4 * j + 2 * i + e;
                    s[index] = valid && key <= position[i] ? fast_exp2(fmaf(s[index], scale_log2, -row_shift[i])) : 0.f;
                }
            }
        }
        // Packed documents: a row does not see keys before its document's start (a uniform branch, no wgmma
        // in it; the starts are read again rather than kept, as registers are short here).
        if (row_positions != nullptr) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int start = position[i] < 0 ? 0 : document_start(row_positions, position[i]);
#pragma unroll
                for (int j = 0; j < KEY_TILE / 8; ++j) {
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        if (key0 + 8 * j + 2 * (lane % 4) + e < start) s[4 * j + 2 * i + e] = 0.f;
                    }
                }
            }
        }
        pin(dp);
#pragma unroll
        for (int index = 0; index < KEY_TILE / 2; ++index) dp[index] = s[index] * (dp[index] - row_dot[index / 2 % 2]);
        pack_fragments(dz_fragments, dp);
        wgmma_fence();
        accumulate<KEY_TILE>(dq_acc, dz_fragments, stage_address(tile));
        wgmma_commit();
        finish_products<STAGES>(next, tile, full, issue_scores);
        pin(dq_acc);
        release_stage(empty, tile % STAGES, lane);
    };

    wait_for_tile(rows_full, 0);
    wait_for_tile(full, 0);
    issue_scores(0);
    for (int tile = 0; tile + 1 < tiles; ++tile) step(tile, true);
    step(tiles - 1, false);

    bf16* dq_rows[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) dq_rows[i] = packed[i] < packed_rows ? dq + row_index(packed[i]) * D : nullptr;
    store_rows(dq_acc, dq_rows, scale, lane);
}
