// decode_attention.cuh: what the two builds of decode attention's partial kernel share (decode_attention.cu
// streams keys through registers on the FMA pipe, decode_attention_mma.cu stages them in shared memory for
// the tensor cores): the cache page, the first key a sequence's new rows see, merging two online-softmax
// states, and the end of a block, where its warps' states become the split's partial result. Include
// common.cuh and attention.cuh first.
#pragma once

constexpr int PAGE = 64;

// The first key any new row of a sequence sees.
__device__ __forceinline__ int first_visible(int context, int query_rows, int window) {
    return window > 0 ? max(0, context - query_rows - window + 1) : 0;
}

// Two online-softmax states merged: returns the larger max and sets the factors that rescale each state to it.
__device__ __forceinline__ float merge_max(float maximum, float other_max, float& mine, float& theirs) {
    const float merged = fmaxf(maximum, other_max);
    const float base = merged == negative_infinity() ? 0.f : merged;
    mine = exp2f(maximum - base);
    theirs = exp2f(other_max - base);
    return merged;
}

// Folds a tile's maximum into a row's online-softmax maximum: returns the factor that rescales the row's sum and
// output, and sets the maximum the tile's exponentials subtract (0 while every score so far is -inf).
__device__ __forceinline__ float absorb_tile_max(float& row_max, float tile_max, float& base_max) {
    float rescale, unused;
    row_max = merge_max(row_max, tile_max, rescale, unused);
    base_max = row_max == negative_infinity() ? 0.f : row_max;
    return rescale;
}

// Where a block of the partial kernel works (grid (splits, Hkv * row blocks, B)): sequence b, the packed rows
// first_row .. first_row + BLOCK_ROWS - 1 of KV head kv_head (of `rows`, group per KV head), and the keys
// first_key .. end_key - 1 of split blockIdx.x, which starts split_tokens * split after seen_from rounded down to
// a page. first_key >= end_key for a split past the sequence's keys.
struct SplitBlock {
    int b, group, rows, kv_head, first_row, context, seen_from, first_key, end_key;
};

template <int BLOCK_ROWS>
__device__ __forceinline__ SplitBlock split_block(const int* context_lengths, int q_heads, int kv_heads, int query_rows,
                                                  int split_tokens, int window) {
    SplitBlock block;
    block.b = blockIdx.z;
    block.group = q_heads / kv_heads;
    block.rows = block.group * query_rows;
    const int row_blocks = (block.rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    block.kv_head = blockIdx.y / row_blocks;
    block.first_row = (blockIdx.y % row_blocks) * BLOCK_ROWS;
    block.context = context_lengths[block.b];
    block.seen_from = first_visible(block.context, query_rows, window);
    block.first_key = block.seen_from / PAGE * PAGE + blockIdx.x * split_tokens;
    block.end_key = min(block.context, block.first_key + split_tokens);
    return block;
}

// The split's unnormalised output, running max and sum for the block's packed rows, from each warp's state in
// shared memory (log2 domain): warp_out[(w * BLOCK_ROWS + j) * DV + c], warp_max and warp_sum[w * BLOCK_ROWS + j]
// for row first_row + j; all BLOCK_THREADS threads call it after a barrier. Packed row r is new row r / group of
// query head kv_head * group + r % group.
template <int BLOCK_ROWS, int BLOCK_WARPS, int BLOCK_THREADS>
__device__ __forceinline__ void write_split_partials(const float* warp_out, const float* warp_max, const float* warp_sum,
                                                     float* partial_out, float* partial_max, float* partial_sum,
                                                     const SplitBlock& block, int q_heads, int query_rows) {
    for (int index = threadIdx.x; index < BLOCK_ROWS * DV; index += BLOCK_THREADS) {
        const int j = index / DV, c = index % DV, row = block.first_row + j;
        if (row >= block.rows) continue;
        float maximum = negative_infinity();
        for (int w = 0; w < BLOCK_WARPS; ++w) maximum = fmaxf(maximum, warp_max[w * BLOCK_ROWS + j]);
        const float base_max = maximum == negative_infinity() ? 0.f : maximum;
        float value = 0.f, sum = 0.f;
        for (int w = 0; w < BLOCK_WARPS; ++w) {
            const float factor = exp2f(warp_max[w * BLOCK_ROWS + j] - base_max);
            value += warp_out[(w * BLOCK_ROWS + j) * DV + c] * factor;
            sum += warp_sum[w * BLOCK_ROWS + j] * factor;
        }
        const int i = row / block.group, head = block.kv_head * block.group + row % block.group;
        const long long slot = ((static_cast<long long>(block.b) * query_rows + i) * q_heads + head) * gridDim.x + blockIdx.x;
        partial_out[slot * DV + c] = value;
        if (c == 0) {
            partial_max[slot] = maximum;
            partial_sum[slot] = sum;
        }
    }
}
