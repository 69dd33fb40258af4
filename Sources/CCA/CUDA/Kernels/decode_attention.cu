// decode_attention.cu: attention of a few new query rows per sequence against its paged KV cache (decoding,
// and chunks that continue a prefix), split along the context as flash-decoding does, and the cache writes.
//
// The cache of one layer is a pool of pages of PAGE tokens, [pages][PAGE][Hkv][DK] keys and [pages][PAGE]
// [Hkv][DV] values; page_table[b][i] is the pool page holding tokens i*PAGE .. i*PAGE + PAGE - 1 of sequence
// b. Sequence b holds context_lengths[b] tokens, the last query_rows of them its new rows (already written
// with paged_cache_write); new row i (position ctx - query_rows + i) sees the keys at positions up to its own.
// GQA: the g query heads of a KV head read each cached key once.
//
// decode_attention_partial: grid (splits, Hkv, B), 128 threads. Split s covers keys s*split_tokens ..
// (s+1)*split_tokens - 1 (a whole number of pages). Per page, K and V land in shared memory by cp.async (two
// stages: the next page loads while this one is used); each thread scores (query row, head, key) triples, the
// block updates the online softmax of every packed row (row r = i * g + head within the group), and thread
// c accumulates output channel c of every packed row. It writes unnormalised partial outputs with their
// running max (log2 domain) and sum.
// decode_attention_combine: grid (B * query_rows, Hq), DV threads: the splits' partials merged, rescaled by
// exp2(max_s - max) and divided by the total sum. A row that sees no key gets zeros.
// paged_cache_write: one thread per (row, channel) of the new keys and values.
//
// Built with -DHEAD_DIM_QK=<dk> -DHEAD_DIM_V=<dv> (at most 256) and -DMAX_ROWS=<g * query_rows> (at most 64).
#include "common.cuh"
#include "attention.cuh"

#ifndef MAX_ROWS
#define MAX_ROWS 16
#endif

constexpr int PAGE = 64, THREADS = 128, WARPS = THREADS / 32;
static_assert(MAX_ROWS <= 64, "at most 64 packed rows per KV head");
static_assert(DK % 32 == 0 && DV <= THREADS && DV % 8 == 0, "decode needs DK a multiple of 32 and DV at most 128");

__device__ __forceinline__ void copy_chunk(void* destination, const void* source) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16;"
                 :: "r"(static_cast<unsigned>(__cvta_generic_to_shared(destination))), "l"(source));
}

extern "C" __global__ void __launch_bounds__(THREADS) decode_attention_partial(
    const T* __restrict__ q,                // [B, query_rows, Hq, DK]
    const T* __restrict__ key_cache,        // [pages, PAGE, Hkv, DK]
    const T* __restrict__ value_cache,      // [pages, PAGE, Hkv, DV]
    const int* __restrict__ page_table,     // [B, max_pages]
    const int* __restrict__ context_lengths, // [B]
    float* __restrict__ partial_out,        // [B, query_rows, Hq, splits, DV]
    float* __restrict__ partial_max,        // [B, query_rows, Hq, splits]
    float* __restrict__ partial_sum,        // [B, query_rows, Hq, splits]
    int q_heads, int kv_heads, int query_rows, int max_pages, int split_tokens, float scale_log2)
{
    constexpr int STAGE = PAGE * (DK + DV);
    extern __shared__ __align__(16) unsigned char raw[];
    T* stages = reinterpret_cast<T*>(raw);                            // 2 x (K [PAGE][DK], V [PAGE][DV])
    float* query = reinterpret_cast<float*>(stages + 2 * STAGE);      // [MAX_ROWS][DK]
    float* prob = query + MAX_ROWS * DK;                              // [MAX_ROWS][PAGE]
    float* row_max = prob + MAX_ROWS * PAGE;                          // [MAX_ROWS]
    float* row_sum = row_max + MAX_ROWS;                              // [MAX_ROWS]
    float* row_rescale = row_sum + MAX_ROWS;                          // [MAX_ROWS]

    const int split = blockIdx.x, kv_head = blockIdx.y, b = blockIdx.z;
    const int group = q_heads / kv_heads, rows = group * query_rows;
    const int context = context_lengths[b];
    const int first_key = split * split_tokens, end_key = min(context, first_key + split_tokens);
    const int* pages = page_table + static_cast<long long>(b) * max_pages;

    for (int index = threadIdx.x; index < rows * DK; index += THREADS) {
        const int row = index / DK, i = row / group, head = kv_head * group + row % group;
        query[index] = to_float(q[((static_cast<long long>(b) * query_rows + i) * q_heads + head) * DK + index % DK]);
    }
    if (threadIdx.x < rows) {
        row_max[threadIdx.x] = negative_infinity();
        row_sum[threadIdx.x] = 0.f;
    }
    // A split past a short sequence's context runs no page, and thread 0 then writes every row's state.
    __syncthreads();

    // Starts copying page `page_index` of the sequence (its keys and values for this KV head) into `stage`.
    auto fetch = [&](int page_index, T* stage) {
        const long long page = pages[page_index];
        constexpr int K_CHUNKS = DK * sizeof(T) / 16, V_CHUNKS = DV * sizeof(T) / 16;
        for (int index = threadIdx.x; index < PAGE * (K_CHUNKS + V_CHUNKS); index += THREADS) {
            const bool is_key = index < PAGE * K_CHUNKS;
            const int local = is_key ? index : index - PAGE * K_CHUNKS, chunks = is_key ? K_CHUNKS : V_CHUNKS;
            const int token = local / chunks, chunk = local % chunks, width = is_key ? DK : DV;
            const T* source = (is_key ? key_cache : value_cache) + ((page * PAGE + token) * kv_heads + kv_head) * width;
            T* destination = stage + (is_key ? token * DK : PAGE * DK + token * DV);
            copy_chunk(reinterpret_cast<char*>(destination) + 16 * chunk, reinterpret_cast<const char*>(source) + 16 * chunk);
        }
        asm volatile("cp.async.commit_group;");
    };

    float acc[MAX_ROWS] = {};  // output channel threadIdx.x of every packed row
    const int first_page = first_key / PAGE, last_page = (end_key + PAGE - 1) / PAGE;
    if (first_page < last_page) fetch(first_page, stages);
    for (int page_index = first_page; page_index < last_page; ++page_index) {
        T* stage = stages + ((page_index - first_page) % 2) * STAGE;
        if (page_index + 1 < last_page) {
            fetch(page_index + 1, stages + ((page_index + 1 - first_page) % 2) * STAGE);
            asm volatile("cp.async.wait_group 1;");
        } else {
            asm volatile("cp.async.wait_group 0;");
        }
        __syncthreads();
        const T* keys = stage;
        const T* values = stage + PAGE * DK;
        // Scores of every (packed row, key) of the page, scaled into the exp2 domain; -inf where not visible.
        // Warp w takes keys w, w + WARPS, ...; each lane holds DK / 32 consecutive channels of the key and of
        // every row, and the warp sums the rows' partial dot products.
        {
            constexpr int PER_LANE = DK / 32;
            const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
            for (int slot = warp; slot < PAGE; slot += WARPS) {
                const int key = page_index * PAGE + slot;
                float key_part[PER_LANE];
#pragma unroll
                for (int x = 0; x < PER_LANE; ++x) key_part[x] = to_float(keys[slot * DK + lane * PER_LANE + x]);
#pragma unroll
                for (int row = 0; row < MAX_ROWS; ++row) {
                    if (row >= rows) break;
                    float dot = 0.f;
#pragma unroll
                    for (int x = 0; x < PER_LANE; ++x) dot += query[row * DK + lane * PER_LANE + x] * key_part[x];
                    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
                    const int position = context - query_rows + row / group;
                    const bool visible = key >= first_key && key < end_key && key <= position;
                    if (lane == 0) prob[row * PAGE + slot] = visible ? dot * scale_log2 : negative_infinity();
                }
            }
        }
        __syncthreads();
        // Online softmax per packed row: one warp per row, lanes over the page's keys.
        for (int row = threadIdx.x / 32; row < rows; row += THREADS / 32) {
            const int lane = threadIdx.x % 32;
            float tile_max = fmaxf(prob[row * PAGE + lane], prob[row * PAGE + lane + 32]);
            for (int offset = 16; offset > 0; offset /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
            const float new_max = fmaxf(row_max[row], tile_max);
            const float base = new_max == negative_infinity() ? 0.f : new_max;
            const float p0 = exp2f(prob[row * PAGE + lane] - base), p1 = exp2f(prob[row * PAGE + lane + 32] - base);
            prob[row * PAGE + lane] = p0;
            prob[row * PAGE + lane + 32] = p1;
            float sum = p0 + p1;
            for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
            if (lane == 0) {
                const float rescale = exp2f(row_max[row] - base);
                row_rescale[row] = rescale;
                row_sum[row] = row_sum[row] * rescale + sum;
                row_max[row] = new_max;
            }
        }
        __syncthreads();
        // Slots past the context hold whatever the pool page held before (possibly NaN): 0 * NaN is NaN, so
        // they are skipped rather than weighted by zero.
        const int valid_slots = min(PAGE, end_key - page_index * PAGE);
        if (threadIdx.x < DV) {
            const int c = threadIdx.x;
#pragma unroll
            for (int row = 0; row < MAX_ROWS; ++row) {
                if (row >= rows) break;
                float value = acc[row] * row_rescale[row];
                for (int slot = 0; slot < valid_slots; ++slot) value += prob[row * PAGE + slot] * to_float(values[slot * DV + c]);
                acc[row] = value;
            }
        }
        __syncthreads();  // this stage is read by everyone before it is refilled
    }

    const int splits = gridDim.x;
#pragma unroll
    for (int row = 0; row < MAX_ROWS; ++row) {
        if (row >= rows) break;
        const int i = row / group, head = kv_head * group + row % group;
        const long long slot = ((static_cast<long long>(b) * query_rows + i) * q_heads + head) * splits + split;
        if (threadIdx.x < DV) partial_out[slot * DV + threadIdx.x] = acc[row];
        if (threadIdx.x == 0) {
            partial_max[slot] = row_max[row];
            partial_sum[slot] = row_sum[row];
        }
    }
}

extern "C" __global__ void decode_attention_combine(
    const float* __restrict__ partial_out, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    T* __restrict__ out,                    // [B, query_rows, Hq, DV]
    float* __restrict__ lse,                // [B, query_rows, Hq] or null: natural log-sum-exp
    int splits)
{
    const long long row = static_cast<long long>(blockIdx.x) * gridDim.y + blockIdx.y;
    float maximum = negative_infinity();
    for (int s = 0; s < splits; ++s) maximum = fmaxf(maximum, partial_max[row * splits + s]);
    const float base = maximum == negative_infinity() ? 0.f : maximum;
    float total = 0.f;
    for (int s = 0; s < splits; ++s) total += partial_sum[row * splits + s] * exp2f(partial_max[row * splits + s] - base);
    for (int c = threadIdx.x; c < DV; c += blockDim.x) {
        float value = 0.f;
        for (int s = 0; s < splits; ++s) value += partial_out[(row * splits + s) * DV + c] * exp2f(partial_max[row * splits + s] - base);
        out[row * DV + c] = from_float<T>(total > 0.f ? value / total : 0.f);
    }
    if (lse != nullptr && threadIdx.x == 0) lse[row] = total > 0.f ? (maximum + __log2f(total)) * 0.6931471805599453f : negative_infinity();
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
