// decode_attention.cu: attention of a few new query rows per sequence against its paged KV cache (decoding,
// and chunks that continue a prefix), split along the context as flash-decoding does, and the cache writes.
//
// The cache of one layer is a pool of pages of PAGE tokens, [pages][PAGE][Hkv][DK] keys and [pages][PAGE]
// [Hkv][DV] values; page_table[b][i] is the pool page holding tokens i*PAGE .. i*PAGE + PAGE - 1 of sequence
// b. Sequence b holds context_lengths[b] tokens, the last query_rows of them its new rows (already written
// with paged_cache_write); new row i (position p = ctx - query_rows + i) sees the keys from lo(p) to p, where
// lo(p) = max(0, p - window + 1) with a sliding window (window > 0) and 0 without.
//
// decode_attention_partial: grid (splits, Hkv * row_blocks, B), THREADS threads. The g query heads of a KV
// head and the new rows are packed into rows r = i * g + head (each cached key is read once for all of them);
// a block takes ROWS of them. Split s covers the keys from low + s * split_tokens (low: the first row's lo,
// rounded down to a page; split_tokens a whole number of pages) to split_tokens further. The kernel is a
// stream over the cache with no shared-memory staging, since its cost is the bytes read: a group of LANES
// lanes reads one key (lane `part` holds channels (w * LANES + part) * 8 .. + 7 of 16-byte word w, so every
// load instruction of the warp is coalesced), a warp reads 32 / LANES keys side by side and TILE of those
// rows in one go (all loads issued before the first use), and the warps of the block take turns along the
// split. Each lane group keeps its own online softmax (log2 domain) per packed row; at the end the lane
// groups merge by shuffles and the warps through shared memory, and the block writes the split's
// unnormalised output with its running max and sum.
// decode_attention_combine: grid (B * query_rows, Hq), COMBINE_THREADS threads: the splits that hold keys of
// the sequence merged, each scaled by exp2(max_s - max), divided by the total sum. Each thread loads up to
// COMBINE_SPLITS splits' maxima and sums at once and the block shares the scale factors; the warps take runs of
// COMBINE_RUN splits in turn, each lane every 32nd channel. A row that sees no key gets zeros. It also merges
// the partial results of decode_attention_mma.cu.
// paged_cache_write: one thread per (row, channel) of the new keys and values.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv> (at most 256), -DLANES=<lanes per key: dk and dv multiples
// of 8 * LANES>, -DROWS=<packed rows per block>, -DTILE=<keys per lane group per step>, -DMIN_BLOCKS=<blocks per
// multiprocessor the registers are capped for> and -DCOMBINE_SPLITS=<the most splits / COMBINE_THREADS>.
#include "common.cuh"
#include "attention.cuh"
#include "decode_attention.cuh"
#include "reduce.cuh"

#ifndef LANES
#define LANES 16
#endif
#ifndef ROWS
#define ROWS 4
#endif
#ifndef TILE
#define TILE 4
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS 2
#endif
#ifndef COMBINE_SPLITS
#define COMBINE_SPLITS 4  // splits each combine thread loads: the host's most splits over COMBINE_THREADS
#endif

constexpr int THREADS = 128, WARPS = THREADS / 32, COMBINE_THREADS = 256, COMBINE_WARPS = COMBINE_THREADS / 32;
constexpr int COMBINE_RUN = 8;                             // consecutive splits a combine warp loads at once
constexpr int CHANNELS_PER_LANE = (DV + 31) / 32;              // the combine's output channels per lane
constexpr int KEY_GROUPS = 32 / LANES;                      // keys a warp reads side by side
constexpr int KEY_WORDS = DK / (8 * LANES), VALUE_WORDS = DV / (8 * LANES);  // 8-channel words per lane
constexpr int STEP = KEY_GROUPS * TILE;                     // keys a warp reads per step
static_assert(32 % LANES == 0 && DK % (8 * LANES) == 0 && DV % (8 * LANES) == 0, "dk and dv must be multiples of 8 * LANES");
static_assert(PAGE % STEP == 0, "a warp's step must lie within one page");

// Eight consecutive channels as they lie in memory: one 16-byte word of bf16, two of float32.
struct Channels8 {
    uint4 word[sizeof(T) / 2];
};

__device__ __forceinline__ Channels8 load_channels(const T* source) {
    Channels8 result;
#pragma unroll
    for (int w = 0; w < static_cast<int>(sizeof(T)) / 2; ++w) result.word[w] = reinterpret_cast<const uint4*>(source)[w];
    return result;
}

__device__ __forceinline__ Channels8 zero_channels() {
    Channels8 result;
#pragma unroll
    for (int w = 0; w < static_cast<int>(sizeof(T)) / 2; ++w) result.word[w] = uint4{0u, 0u, 0u, 0u};
    return result;
}

__device__ __forceinline__ unsigned word_part(const uint4& word, int index) {
    return index == 0 ? word.x : index == 1 ? word.y : index == 2 ? word.z : word.w;
}

// Channel e (a compile-time constant after unrolling) of the eight, as float.
__device__ __forceinline__ float channel(const Channels8& channels, int e) {
    if (sizeof(T) == 2) {
        const unsigned pair = word_part(channels.word[0], e / 2);
        return __uint_as_float(e % 2 == 0 ? pair << 16 : pair & 0xffff0000u);
    }
    return __uint_as_float(word_part(channels.word[e / 4], e % 4));
}

extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) decode_attention_partial(
    const T* __restrict__ q,                // [B, query_rows, Hq, DK]
    const T* __restrict__ key_cache,        // [pages, PAGE, Hkv, DK]
    const T* __restrict__ value_cache,      // [pages, PAGE, Hkv, DV]
    const int* __restrict__ page_table,     // [B, max_pages]
    const int* __restrict__ context_lengths, // [B]
    float* __restrict__ partial_out,        // [B, query_rows, Hq, splits, DV]
    float* __restrict__ partial_max,        // [B, query_rows, Hq, splits]
    float* __restrict__ partial_sum,        // [B, query_rows, Hq, splits]
    int q_heads, int kv_heads, int query_rows, int max_pages, int split_tokens, int window, float scale_log2)
{
    __shared__ float warp_max[WARPS][ROWS], warp_sum[WARPS][ROWS];
    __shared__ float warp_out[WARPS][ROWS][DV];

    const SplitBlock block = split_block<ROWS>(context_lengths, q_heads, kv_heads, query_rows, split_tokens, window);
    const int b = block.b, group = block.group, rows = block.rows, kv_head = block.kv_head, first_row = block.first_row;
    const int context = block.context, seen_from = block.seen_from, first_key = block.first_key, end_key = block.end_key;
    if (first_key >= end_key) return;  // the combine reads only the splits that hold keys
    const int* pages = page_table + static_cast<long long>(b) * max_pages;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, key_group = lane / LANES, part = lane % LANES;

    // This lane's channels of every packed row's query, scaled into the exp2 domain, and the rows' key ranges.
    float query[ROWS][KEY_WORDS * 8];
    int row_from[ROWS], row_to[ROWS];
#pragma unroll
    for (int j = 0; j < ROWS; ++j) {
        const int row = first_row + j, i = row / group, head = kv_head * group + row % group;
        const bool real = row < rows;
        const T* source = q + ((static_cast<long long>(b) * query_rows + i) * q_heads + head) * DK;
#pragma unroll
        for (int w = 0; w < KEY_WORDS; ++w) {
            const Channels8 words = real ? load_channels(source + (w * LANES + part) * 8) : zero_channels();
#pragma unroll
            for (int e = 0; e < 8; ++e) query[j][w * 8 + e] = channel(words, e) * scale_log2;
        }
        const int position = context - query_rows + i;
        row_to[j] = real ? position : -1;
        row_from[j] = window > 0 ? max(0, position - window + 1) : 0;
    }

    float row_max[ROWS], row_sum[ROWS], out[ROWS][VALUE_WORDS * 8];
#pragma unroll
    for (int j = 0; j < ROWS; ++j) {
        row_max[j] = negative_infinity();
        row_sum[j] = 0.f;
#pragma unroll
        for (int c = 0; c < VALUE_WORDS * 8; ++c) out[j][c] = 0.f;
    }

    // Every warp runs the same number of steps (the last ones of some warps empty), so that the warps of a
    // block stay in step with each other.
    const int steps = (end_key - first_key + WARPS * STEP - 1) / (WARPS * STEP);
    for (int step = 0; step < steps; ++step) {
        const int base = first_key + (step * WARPS + warp) * STEP;
        const long long page = base < end_key ? pages[base / PAGE] : 0;
        // Keys outside [seen_from, end_key) are not read: past the context a page holds stale data (maybe NaN).
        Channels8 keys[TILE][KEY_WORDS], values[TILE][VALUE_WORDS];
#pragma unroll
        for (int t = 0; t < TILE; ++t) {
            const int key = base + t * KEY_GROUPS + key_group;
            const bool read = key >= seen_from && key < end_key;
            const long long token = (page * PAGE + key % PAGE) * kv_heads + kv_head;
#pragma unroll
            for (int w = 0; w < KEY_WORDS; ++w)
                keys[t][w] = read ? load_channels(key_cache + token * DK + (w * LANES + part) * 8) : zero_channels();
#pragma unroll
            for (int w = 0; w < VALUE_WORDS; ++w)
                values[t][w] = read ? load_channels(value_cache + token * DV + (w * LANES + part) * 8) : zero_channels();
        }
#pragma unroll
        for (int j = 0; j < ROWS; ++j) {
            float score[TILE];
            float tile_max = negative_infinity();
#pragma unroll
            for (int t = 0; t < TILE; ++t) {
                float dot = 0.f;
#pragma unroll
                for (int w = 0; w < KEY_WORDS; ++w) {
#pragma unroll
                    for (int e = 0; e < 8; ++e) dot += query[j][w * 8 + e] * channel(keys[t][w], e);
                }
#pragma unroll
                for (int offset = LANES / 2; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
                const int key = base + t * KEY_GROUPS + key_group;
                score[t] = key >= row_from[j] && key <= row_to[j] && key < end_key ? dot : negative_infinity();
                tile_max = fmaxf(tile_max, score[t]);
            }
            float base_max;
            const float rescale = absorb_tile_max(row_max[j], tile_max, base_max);
            float sum = row_sum[j] * rescale;
#pragma unroll
            for (int c = 0; c < VALUE_WORDS * 8; ++c) out[j][c] *= rescale;
#pragma unroll
            for (int t = 0; t < TILE; ++t) {
                const float p = exp2f(score[t] - base_max);
                sum += p;
#pragma unroll
                for (int w = 0; w < VALUE_WORDS; ++w) {
#pragma unroll
                    for (int e = 0; e < 8; ++e) out[j][w * 8 + e] += p * channel(values[t][w], e);
                }
            }
            row_sum[j] = sum;
        }
    }

    // The warp's lane groups merged (each lane of group 0 ends with the warp's state for its channels).
#pragma unroll
    for (int offset = LANES; offset < 32; offset *= 2) {
#pragma unroll
        for (int j = 0; j < ROWS; ++j) {
            float mine, theirs;
            row_max[j] = merge_max(row_max[j], __shfl_xor_sync(0xffffffffu, row_max[j], offset), mine, theirs);
            row_sum[j] = row_sum[j] * mine + __shfl_xor_sync(0xffffffffu, row_sum[j], offset) * theirs;
#pragma unroll
            for (int c = 0; c < VALUE_WORDS * 8; ++c) out[j][c] = out[j][c] * mine + __shfl_xor_sync(0xffffffffu, out[j][c], offset) * theirs;
        }
    }
    if (key_group == 0) {
#pragma unroll
        for (int j = 0; j < ROWS; ++j) {
            if (part == 0) {
                warp_max[warp][j] = row_max[j];
                warp_sum[warp][j] = row_sum[j];
            }
#pragma unroll
            for (int w = 0; w < VALUE_WORDS; ++w) {
#pragma unroll
                for (int e = 0; e < 8; ++e) warp_out[warp][j][(w * LANES + part) * 8 + e] = out[j][w * 8 + e];
            }
        }
    }
    __syncthreads();

    write_split_partials<ROWS, WARPS, THREADS>(&warp_out[0][0][0], &warp_max[0][0], &warp_sum[0][0], partial_out, partial_max, partial_sum,
                                               block, q_heads, query_rows);
}

extern "C" __global__ void __launch_bounds__(COMBINE_THREADS) decode_attention_combine(
    const float* __restrict__ partial_out, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    const int* __restrict__ context_lengths, // [B]
    T* __restrict__ out,                    // [B, query_rows, Hq, DV]
    float* __restrict__ lse,                // [B, query_rows, Hq] or null: natural log-sum-exp
    int query_rows, int splits, int split_tokens, int window)
{
    const long long row = static_cast<long long>(blockIdx.x) * gridDim.y + blockIdx.y;
    const int context = context_lengths[blockIdx.x / query_rows];
    const int first_key = first_visible(context, query_rows, window) / PAGE * PAGE;
    const int used = min(splits, (context - first_key + split_tokens - 1) / split_tokens);
    // Each thread loads its few splits' maxima and sums at once (the host keeps splits <= COMBINE_SPLITS *
    // COMBINE_THREADS), so that their loads overlap, and the block shares the splits' scale factors.
    __shared__ float factors[COMBINE_SPLITS * COMBINE_THREADS];
    float maxima[COMBINE_SPLITS], sums[COMBINE_SPLITS], maximum = negative_infinity();
#pragma unroll
    for (int k = 0; k < COMBINE_SPLITS; ++k) {
        const int s = k * COMBINE_THREADS + threadIdx.x;
        maxima[k] = s < used ? partial_max[row * splits + s] : negative_infinity();
        sums[k] = s < used ? partial_sum[row * splits + s] : 0.f;
        maximum = fmaxf(maximum, maxima[k]);
    }
    maximum = block_reduce(maximum, MaxOfFloats());
    const float base = maximum == negative_infinity() ? 0.f : maximum;
    float total = 0.f;
#pragma unroll
    for (int k = 0; k < COMBINE_SPLITS; ++k) {
        const int s = k * COMBINE_THREADS + threadIdx.x;
        if (s < used) {
            factors[s] = exp2f(maxima[k] - base);
            total += sums[k] * factors[s];
        }
    }
    total = block_sum(total);  // its barriers also publish `factors`
    if (lse != nullptr && threadIdx.x == 0) lse[row] = total > 0.f ? (maximum + __log2f(total)) * 0.6931471805599453f : negative_infinity();
    // The warps take runs of COMBINE_RUN consecutive splits in turn (each lane every 32nd channel), a run's loads
    // all issued before their first use, so that many are in flight; the warps' sums meet in shared memory.
    __shared__ float warp_values[COMBINE_WARPS][DV];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float value[CHANNELS_PER_LANE] = {};
    for (int first = warp * COMBINE_RUN; first < used; first += COMBINE_WARPS * COMBINE_RUN) {
        float loaded[COMBINE_RUN][CHANNELS_PER_LANE];
#pragma unroll
        for (int u = 0; u < COMBINE_RUN; ++u) {
            const float* source = partial_out + (row * splits + first + u) * DV;
#pragma unroll
            for (int k = 0; k < CHANNELS_PER_LANE; ++k) {
                loaded[u][k] = first + u < used && k * 32 + lane < DV ? source[k * 32 + lane] : 0.f;
            }
        }
#pragma unroll
        for (int u = 0; u < COMBINE_RUN; ++u) {
            const float factor = first + u < used ? factors[first + u] : 0.f;
#pragma unroll
            for (int k = 0; k < CHANNELS_PER_LANE; ++k) value[k] += loaded[u][k] * factor;
        }
    }
#pragma unroll
    for (int k = 0; k < CHANNELS_PER_LANE; ++k) {
        if (k * 32 + lane < DV) warp_values[warp][k * 32 + lane] = value[k];
    }
    __syncthreads();
    for (int c = threadIdx.x; c < DV; c += COMBINE_THREADS) {
        float sum = 0.f;
        for (int w = 0; w < COMBINE_WARPS; ++w) sum += warp_values[w][c];
        out[row * DV + c] = from_float<T>(total > 0.f ? sum / total : 0.f);
    }
}

extern "C" __global__ void paged_cache_write(
    const T* __restrict__ keys,             // [rows, Hkv, DK]
    const T* __restrict__ values,           // [rows, Hkv, DV]
    const int* __restrict__ row_sequence,   // [rows]: the sequence of each new row
    const int* __restrict__ row_position,   // [rows]: its position in that sequence
    const int* __restrict__ page_table,     // [B, max_pages]
    T* __restrict__ key_cache, T* __restrict__ value_cache,
    int rows, int kv_heads, int max_pages)
{
    const long long total = static_cast<long long>(rows) * kv_heads * (DK + DV);
    for (long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
         index += static_cast<long long>(gridDim.x) * blockDim.x) {
        const int row = static_cast<int>(index / (kv_heads * (DK + DV)));
        const int within = static_cast<int>(index % (kv_heads * (DK + DV))), head = within / (DK + DV), c = within % (DK + DV);
        const int position = row_position[row];
        const long long page = page_table[static_cast<long long>(row_sequence[row]) * max_pages + position / PAGE];
        const long long slot = (page * PAGE + position % PAGE) * kv_heads + head;
        if (c < DK) key_cache[slot * DK + c] = keys[(static_cast<long long>(row) * kv_heads + head) * DK + c];
        else value_cache[slot * DV + c - DK] = values[(static_cast<long long>(row) * kv_heads + head) * DV + c - DK];
    }
}
