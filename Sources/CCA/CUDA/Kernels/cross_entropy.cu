// cross_entropy.cu: softmax cross-entropy of each row of logits [rows, vocab], fused with its gradient,
// which replaces the logits in place: the GPU twin of Operations/CrossEntropy.swift.
//
// One block of THREADS threads per row. Pass 1: each thread keeps an online (maximum, sum of
// exp(x - maximum)) over a strided slice of the row, N consecutive columns at a time (coalesced:
// consecutive threads, consecutive columns; N = 8, one 16-byte word of bfloat16, when the host found the
// rows aligned, else 1), and flags for NaN and +infinity; the block merges the threads' states (butterfly
// shuffles, then the warp states in warp order). The log-sum-exp follows CrossEntropy.logSumExp: NaN if the
// row holds a NaN, +inf if it holds +inf, -inf if every logit is -inf, log(sum) + maximum otherwise; so a
// NaN anywhere in a row gives a NaN loss. losses[row] = lse - logit[target] (float32, unweighted), 0 for an
// ignored row (target < 0). Pass 2 (with write_gradient): logits[row] = (softmax - onehot(target)) * weight,
// where the caller's weight is 1 / (rows counted in the whole batch), so that chunks of rows give the
// gradient of one mean; ignored rows become 0.
//
// With `cached`, pass 1 also copies the row into dynamic shared memory (vocab elements of T: 100 KB for a
// 50304 bfloat16 vocabulary, two blocks a multiprocessor on Hopper) and pass 2 reads it from there, so the
// logits are read from memory once and written once; otherwise (rows too long for shared memory) pass 2
// reads them again. The exponentials are exp2f of x * log2(e) - maximum * log2(e) (one fused multiply-add
// and one MUFU instruction, within 2 ulp) rather than the accurate expf, which takes several instructions.
#include "common.cuh"
#include "elementwise.cuh"

constexpr int THREADS = 512, WORDS_AT_ONCE = 4;
// Two blocks a multiprocessor (the cached row of a 50304 bfloat16 vocabulary is 100 KB): at most 64 registers.
constexpr int BLOCKS_PER_MULTIPROCESSOR = 2;
constexpr float LOG2E = 1.4426950408889634f;

// e^(x - m), with m2 = m * log2(e).
__device__ __forceinline__ float exp_from(float x, float m2) { return exp2f(fmaf(x, LOG2E, -m2)); }

// The online softmax state of a set of logits: their maximum and sum of exp(x - maximum).
struct SoftmaxState {
    float maximum, sum;
};

__device__ __forceinline__ SoftmaxState merge(SoftmaxState a, SoftmaxState b) {
    const float maximum = fmaxf(a.maximum, b.maximum);
    if (maximum == negative_infinity()) return {maximum, 0.f};
    const float m2 = maximum * LOG2E;
    return {maximum, a.sum * exp_from(a.maximum, m2) + b.sum * exp_from(b.maximum, m2)};
}

// Adds N logits to a thread's state: one rescale for the group's maximum. NaN and +infinity only raise
// their flags (the row's result is then fixed, whatever the sum); -infinity adds exp(-inf) = 0.
template <int N> __device__ __forceinline__ void absorb(SoftmaxState& state, const Elements<N>& x, int& saw_nan, int& saw_infinity) {
    float maximum = state.maximum;
    for (int k = 0; k < N; ++k) {
        const float value = x.value[k];
        if (value != value) saw_nan = 1;
        else if (value == -negative_infinity()) saw_infinity = 1;
        else maximum = fmaxf(maximum, value);
    }
    if (maximum == negative_infinity()) return;
    const float m2 = maximum * LOG2E;
    float sum = state.sum * exp_from(state.maximum, m2);
    for (int k = 0; k < N; ++k) {
        const float value = x.value[k];
        if (value == value && value != -negative_infinity()) sum += exp_from(value, m2);
    }
    state = {maximum, sum};
}

template <int N> __device__ void cross_entropy_row(T* x, T* cache, int target, float* loss, int vocab, float weight,
                                                   int write_gradient)
{
    __shared__ SoftmaxState warp_states[THREADS / 32];
    // Read before pass 2 overwrites it; the block barriers below order this read before any write.
    const float target_logit = to_float(x[target]);

    SoftmaxState state = {negative_infinity(), 0.f};
    int saw_nan = 0, saw_infinity = 0;
    // WORDS_AT_ONCE loads are issued before any is used: the stores into the cache would otherwise keep the
    // compiler from moving the next load above them (it cannot tell the two apart), one load in flight a thread.
    for (int first = threadIdx.x * N; first < vocab; first += WORDS_AT_ONCE * THREADS * N) {
        Elements<N> logits[WORDS_AT_ONCE];
        for (int w = 0; w < WORDS_AT_ONCE; ++w) {
            const int c = first + w * THREADS * N;
            if (c < vocab) logits[w] = load<N>(x + c);
        }
        for (int w = 0; w < WORDS_AT_ONCE; ++w) {
            const int c = first + w * THREADS * N;
            if (c >= vocab) break;
            if (cache) store_elements(cache + c, logits[w]);
            absorb<N>(state, logits[w], saw_nan, saw_infinity);
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        const SoftmaxState other = {__shfl_xor_sync(0xffffffffu, state.maximum, offset),
                                    __shfl_xor_sync(0xffffffffu, state.sum, offset)};
        state = merge(state, other);
    }
    if (threadIdx.x % 32 == 0) warp_states[threadIdx.x / 32] = state;
    saw_nan = __syncthreads_or(saw_nan);
    saw_infinity = __syncthreads_or(saw_infinity);
    SoftmaxState total = warp_states[0];
    for (int w = 1; w < THREADS / 32; ++w) total = merge(total, warp_states[w]);

    float lse;
    if (saw_nan) lse = __int_as_float(0x7fc00000);
    else if (saw_infinity) lse = -negative_infinity();
    else if (total.maximum == negative_infinity()) lse = total.maximum;
    else lse = logf(total.sum) + total.maximum;

    if (threadIdx.x == 0) *loss = lse - target_logit;
    if (!write_gradient) return;
    // Each thread reads back only the cached elements it wrote itself: no barrier needed.
    const T* source = cache ? cache : x;
    const float lse2 = lse * LOG2E;
    for (int c = threadIdx.x * N; c < vocab; c += THREADS * N) {
        Elements<N> gradient = load<N>(source + c);
        for (int k = 0; k < N; ++k) {
            gradient.value[k] = exp_from(gradient.value[k], lse2) * weight;
            if (c + k == target) gradient.value[k] -= weight;
        }
        store_elements(x + c, gradient);
    }
}

// step: 8 when the host found every row 16-byte aligned (CUDAContext.elementsPerStep), else 1. cached: 1 when
// the launch has vocab * sizeof(T) bytes of dynamic shared memory for the row.
extern "C" __global__ void __launch_bounds__(THREADS, BLOCKS_PER_MULTIPROCESSOR) cross_entropy(
    T* logits, const int* __restrict__ targets, float* __restrict__ losses, int vocab, float weight, int write_gradient, int step,
    int cached)
{
    extern __shared__ uint4 row_cache[];
    T* cache = cached ? reinterpret_cast<T*>(row_cache) : nullptr;
    const long long row = blockIdx.x;
    T* x = logits + row * vocab;
    const int target = targets[row];
    if (target < 0) {
        if (threadIdx.x == 0) losses[row] = 0.f;
        if (write_gradient) for (int c = threadIdx.x; c < vocab; c += THREADS) x[c] = from_float<T>(0.f);
        return;
    }
    if (step == 8) cross_entropy_row<8>(x, cache, target, losses + row, vocab, weight, write_gradient);
    else cross_entropy_row<1>(x, cache, target, losses + row, vocab, weight, write_gradient);
}
