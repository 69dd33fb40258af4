// sampling.cu: the next token of each row of logits, chosen as the CPU Sampler chooses it (Sampler.swift), so
// that a decode step returns token ids instead of logits.
//
// The Sampler orders the tokens by logit, highest first (ties: lower index first), keeps the first top_k,
// weighs them exp((logit - top) / temperature), keeps the shortest prefix whose share of the weight reaches
// top_p, and walks the kept tokens in index order subtracting their probabilities from a uniform draw; the
// token that takes the draw below zero is chosen (the last kept token if rounding leaves some over).
// Temperature 0 is greedy: the first token of the order.
//
// sample_tokens: grid (rows), SAMPLE_THREADS threads. Greedy rows take one coalesced pass: the largest
// order key, lowest index first among ties, and a one-hot distribution. Other rows: no sort; the top_k-th
// logit and the top_p boundary are found bit by bit over an order-preserving integer key of the logits (32
// counting passes each, coalesced: thread t reads tokens t, t + SAMPLE_THREADS, ...), and the tokens tied at a
// boundary are kept lowest index first, by rank: there, and in the draw's walk, thread t owns the consecutive
// tokens [t * chunk, (t + 1) * chunk), so that the threads in order walk the vocabulary in index order.
// The draw arrives from the host (each row's Sampler generator), so a row draws exactly what the CPU would.
#include "common.cuh"
#include "reduce.cuh"

constexpr int SAMPLE_THREADS = 1024;

// Float order as unsigned order.
__device__ __forceinline__ unsigned order_key(float x) {
    const unsigned bits = __float_as_uint(x);
    return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

// The inclusive prefix sum over the threads in order of one value each (shared memory, SAMPLE_THREADS
// threads); `before` is the previous thread's inclusive sum (0 for thread 0), so that the threads' ranges
// [before, inclusive) tile [0, total) exactly, with no gap or overlap from rounding.
__device__ __forceinline__ float inclusive_scan(float value, float& before, float& total) {
    __shared__ float scan[2][SAMPLE_THREADS];
    int from = 0;
    scan[0][threadIdx.x] = value;
    __syncthreads();
    for (int offset = 1; offset < SAMPLE_THREADS; offset *= 2) {
        const float sum = scan[from][threadIdx.x] + (threadIdx.x >= offset ? scan[from][threadIdx.x - offset] : 0.f);
        scan[1 - from][threadIdx.x] = sum;
        from = 1 - from;
        __syncthreads();
    }
    total = scan[from][SAMPLE_THREADS - 1];
    before = threadIdx.x > 0 ? scan[from][threadIdx.x - 1] : 0.f;
    const float inclusive = scan[from][threadIdx.x];
    __syncthreads();  // the next call's writes wait for these reads
    return inclusive;
}

// The float whose order_key is `key`.
__device__ __forceinline__ float key_value(unsigned key) {
    return __uint_as_float(key & 0x80000000u ? key & 0x7fffffffu : ~key);
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_tokens(
    const T* __restrict__ logits,           // [rows, vocab]
    const float* __restrict__ temperatures, // [rows]: 0 = greedy
    const int* __restrict__ top_ks,         // [rows]: 0 = all
    const float* __restrict__ top_ps,       // [rows]: 1 = all
    const float* __restrict__ draws,        // [rows]: uniform in [0, 1)
    int* __restrict__ tokens,               // [rows]
    float* __restrict__ probabilities,      // [rows, vocab]: the distribution drawn from (also the weights on the way)
    int vocab)
{
    __shared__ int chosen;
    const long long row = blockIdx.x;
    const T* row_logits = logits + row * vocab;
    float* weights = probabilities + row * vocab;
    const float temperature = temperatures[row];
    const bool greedy = temperature == 0.f;
    const int top_k = greedy ? 1 : top_ks[row] > 0 ? min(top_ks[row], vocab) : vocab;
    const float top_p = greedy ? 1.f : top_ps[row];
    const float scale = greedy ? 0.f : 1.4426950408889634f / temperature;  // exp(x / t) = exp2(x * scale)
    const int chunk = (vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
    const int begin = min(vocab, static_cast<int>(threadIdx.x) * chunk), end = min(vocab, begin + chunk);
    auto key_at = [&](int j) { return order_key(to_float(row_logits[j])); };

    if (greedy) {
        // The first token of the order: the largest key, the lowest index among equal keys.
        unsigned best_key = 0;
        int best = vocab;
        for (int j = threadIdx.x; j < vocab; j += SAMPLE_THREADS) {
            const unsigned key = key_at(j);
            if (key > best_key || best == vocab) best_key = key, best = j;  // ascending j: the first of a tie stays
        }
        __shared__ unsigned long long best_of_warp[SAMPLE_THREADS / 32];
        // Larger key first, then the smaller index: one 64-bit maximum of (key, ~index).
        unsigned long long packed = best == vocab ? 0ull : (static_cast<unsigned long long>(best_key) << 32) | ~static_cast<unsigned>(best);
        for (int offset = 16; offset > 0; offset /= 2) {
            const unsigned long long other = __shfl_xor_sync(0xffffffffu, packed, offset);
            packed = other > packed ? other : packed;
        }
        if (threadIdx.x % 32 == 0) best_of_warp[threadIdx.x / 32] = packed;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < SAMPLE_THREADS / 32; ++w) packed = best_of_warp[w] > packed ? best_of_warp[w] : packed;
            chosen = static_cast<int>(~static_cast<unsigned>(packed & 0xffffffffu));
        }
        __syncthreads();
        for (int j = threadIdx.x; j < vocab; j += SAMPLE_THREADS) weights[j] = j == chosen ? 1.f : 0.f;
        if (threadIdx.x == 0) tokens[row] = chosen;
        return;
    }

    // The largest key with at least `wanted` of mass at or above it, bit by bit from the top; a token's mass is
    // its weight when `weighed`, else 1. (A flag, not a generic lambda: NVRTC 13.0 takes a generic lambda's
    // call operator for a host function and refuses it.)
    auto largest_key = [&](float wanted, bool weighed) {
        unsigned prefix = 0;
        for (int bit = 31; bit >= 0; --bit) {
            const unsigned candidate = prefix | (1u << bit);
            float mine = 0.f;
            for (int j = threadIdx.x; j < vocab; j += SAMPLE_THREADS) mine += key_at(j) >= candidate ? (weighed ? weights[j] : 1.f) : 0.f;
            if (block_sum(mine) >= wanted) prefix = candidate;
        }
        return prefix;
    };
    // Keeps, of the tokens at `key` with weight, the first `allowed` in index order; zeroes the weight of every
    // token below `key` and of the tied ones past `allowed`.
    auto cut_at = [&](unsigned key, float allowed) {
        float ties = 0.f;
        for (int j = begin; j < end; ++j) ties += key_at(j) == key && weights[j] > 0.f ? 1.f : 0.f;
        float rank, unused;
        inclusive_scan(ties, rank, unused);
        for (int j = begin; j < end; ++j) {
            const unsigned k = key_at(j);
            if (k == key && weights[j] > 0.f) {
                if (rank >= allowed) weights[j] = 0.f;
                rank += 1.f;
            } else if (k < key) {
                weights[j] = 0.f;
            }
        }
    };

    // Top-k: every token weighed, then the ones past the k-th cut.
    const float top = key_value(largest_key(1.f, false));
    for (int j = threadIdx.x; j < vocab; j += SAMPLE_THREADS) weights[j] = exp2f((to_float(row_logits[j]) - top) * scale);
    const unsigned k_key = largest_key(static_cast<float>(top_k), false);
    float above = 0.f;
    for (int j = threadIdx.x; j < vocab; j += SAMPLE_THREADS) above += key_at(j) > k_key ? 1.f : 0.f;
    cut_at(k_key, static_cast<float>(top_k) - block_sum(above));

    // Top-p: the shortest prefix of the order holding top_p of the kept weight.
    float total = 0.f;
    for (int j = begin; j < end; ++j) total += weights[j];
    total = block_sum(total);
    if (top_p < 1.f) {
        const float wanted = top_p * total;
        const unsigned p_key = largest_key(wanted, true);
        float heavier = 0.f;
        for (int j = begin; j < end; ++j) heavier += key_at(j) > p_key ? weights[j] : 0.f;
        const float tie_weight = exp2f((key_value(p_key) - top) * scale);
        cut_at(p_key, fmaxf(1.f, ceilf((wanted - block_sum(heavier)) / tie_weight)));
        total = 0.f;
        for (int j = begin; j < end; ++j) total += weights[j];
        total = block_sum(total);
    }

    // The draw, walked in index order over the normalised probabilities by the thread whose range holds it.
    float mine = 0.f, kept = 0.f;
    for (int j = begin; j < end; ++j) {
        weights[j] /= total;
        mine += weights[j];
        kept += weights[j] > 0.f ? 1.f : 0.f;
    }
    float before, sum, kept_before, kept_total;
    const float through = inclusive_scan(mine, before, sum);
    const float kept_through = inclusive_scan(kept, kept_before, kept_total);
    auto last_kept = [&]() {
        int last = -1;
        for (int j = begin; j < end; ++j) last = weights[j] > 0.f ? j : last;
        return last;
    };
    if (threadIdx.x == 0) chosen = -1;
    __syncthreads();
    const float draw = draws[row];
    if (before <= draw && draw < through) {
        float running = before;
        int pick = -1;
        for (int j = begin; j < end && pick < 0; ++j) {
            running += weights[j];
            if (weights[j] > 0.f && running > draw) pick = j;
        }
        chosen = pick >= 0 ? pick : last_kept();  // rounding within the chunk: its last kept token
    }
    __syncthreads();
    // A draw at or past the rounded total: the last kept token of all.
    if (chosen < 0 && kept > 0.f && kept_through == kept_total) chosen = last_kept();
    __syncthreads();
    if (threadIdx.x == 0) tokens[row] = chosen;
}
