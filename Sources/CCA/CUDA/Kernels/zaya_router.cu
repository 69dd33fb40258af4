// zaya_router.cu: the element-wise steps of ZAYA's router (the GPU twin of Models/ZayaRouter.swift), which
// runs in float32 whatever the model's storage type, so that its top-1 choice is the CPU's.
//
// zaya_router_state: state = projected + bias (+ previous * scale after the first layer), [rows, R]; `state`
// may be `projected` itself.
// zaya_bias_gelu: x = gelu(x + bias) in place, the exact erf form, [rows, width].
// zaya_router_choose: one thread per row of the [rows, classes] scores: softmax, then the class with the
// largest probability + balancing bias (the first of equals, as on the CPU); class `classes - 1` is the
// skip expert, written as expert -1 with weight 0, any other as its index with its unbiased probability.
//
// zaya_router_few_rows (at the end): the whole router of a step of at most FEW_ROWS rows in three launches
// of one kernel instead of cuBLAS products and element kernels, each a few-row product (few_rows.cuh) over
// every block: the down-projection with the carried state, then fc1 with the router's RMSNorm before it
// (each block normalises the rows itself: they are R wide), then fc2, whose last block also makes the
// scores and the choice.
#include "common.cuh"
#include "elementwise.cuh"
#include "reduce.cuh"
#include "few_rows.cuh"

extern "C" __global__ void zaya_router_state(const T* projected, const float* __restrict__ bias,
                                             const float* __restrict__ previous, const float* __restrict__ scale,
                                             float* state, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const int c = static_cast<int>(e % width);
        float value = to_float(projected[e]) + bias[c];
        if (previous) value += previous[e] * scale[c];
        state[e] = value;
    });
}

extern "C" __global__ void zaya_bias_gelu(T* x, const float* __restrict__ bias, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const float value = to_float(x[e]) + bias[e % width];
        x[e] = from_float<T>(0.5f * value * (1.f + erff(value * 0.70710678118654752f)));
    });
}

// One row's choice from its scores `s` [classes] (zaya_router_choose).
template <typename Score>
__device__ void choose_expert(const Score* s, const float* __restrict__ balancing, int classes, int* expert, float* weight)
{
    float maximum = negative_infinity();
    for (int c = 0; c < classes; ++c) maximum = fmaxf(maximum, to_float(s[c]));
    float total = 0.f;
    for (int c = 0; c < classes; ++c) total += expf(to_float(s[c]) - maximum);
    int best = 0;
    float best_probability = expf(to_float(s[0]) - maximum) / total;
    for (int c = 1; c < classes; ++c) {
        const float p = expf(to_float(s[c]) - maximum) / total;
        if (p + balancing[c] > best_probability + balancing[best]) { best = c; best_probability = p; }
    }
    const bool skip = best == classes - 1;
    *expert = skip ? -1 : best;
    *weight = skip ? 0.f : best_probability;
}

extern "C" __global__ void zaya_router_choose(const T* __restrict__ scores, const float* __restrict__ balancing,
                                              int* __restrict__ expert, float* __restrict__ weight, long long rows, int classes)
{
    for_each_element(rows, [&](long long row) { choose_expert(scores + row * classes, balancing, classes, expert + row, weight + row); });
}

constexpr int FEW_THREADS = 64, FEW_WARPS = FEW_THREADS / 32;  // small blocks: R = 256 columns make 128 of them
constexpr int MAX_CLASSES = 257;                                 // MixtureOfExperts.maximumDeviceExperts + the skip expert

// y[r, c] = x[r] · weight[c] + bias[c] for the rows of x [rows, in] (float32 builds only), then:
// - with `norm_weight`, x is first normalised per row, x / sqrt(mean(x^2) + eps) * norm_weight;
// - with `previous`, y += previous[r, c] * scale[c] (the state carried from the previous layer's router);
// - with `gelu`, y = gelu(y), the exact erf form;
// - with `scores_weight` [classes, out], the block that finishes last (`done`, as in few_rows.cuh) makes each
//   row's scores y[r] · scores_weight[k] and its choice (zaya_router_choose's).
// Blocks of FEW_THREADS; shared memory rows x in floats.
extern "C" __global__ void __launch_bounds__(FEW_THREADS) zaya_router_few_rows(
    const T* x, const float* __restrict__ norm_weight, float epsilon, const T* __restrict__ weight, const float* __restrict__ bias,
    const float* __restrict__ previous, const float* __restrict__ scale, int gelu, T* y, int rows, int in_features,
    int out_features, const T* __restrict__ scores_weight, const float* __restrict__ balancing, int classes,
    int* __restrict__ expert, float* __restrict__ expert_weight, unsigned* done)
{
    extern __shared__ float rows_in[];  // [rows][in_features], then the last block's [rows][out_features]
    __shared__ int unused_expert[FEW_ROWS];
    __shared__ unsigned all_rows[FEW_ROWS];
    __shared__ float scores[FEW_ROWS * MAX_CLASSES];
    stage_few_rows(x, nullptr, rows, in_features, rows_in, unused_expert, all_rows);
    if (norm_weight) {
        for (int r = 0; r < rows; ++r) {
            float* row = rows_in + r * in_features;
            float squares = 0.f;
            for (int k = threadIdx.x; k < in_features; k += FEW_THREADS) squares += row[k] * row[k];
            const float inverse = 1.f / sqrtf(block_sum(squares) / in_features + epsilon);
            for (int k = threadIdx.x; k < in_features; k += FEW_THREADS) row[k] = row[k] * inverse * norm_weight[k];
        }
        __syncthreads();
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int c = blockIdx.x * FEW_WARPS + warp; c < out_features; c += gridDim.x * FEW_WARPS) {
        float sums[1][FEW_ROWS] = {};
        few_rows_dot<1>(weight + static_cast<long long>(c) * in_features, 0, rows_in, in_features, all_rows[0], lane, sums);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < FEW_ROWS; ++r) {
                if (r >= rows) break;
                const long long e = static_cast<long long>(r) * out_features + c;
                float value = sums[0][r] + bias[c];
                if (previous) value += previous[e] * scale[c];
                if (gelu) value = 0.5f * value * (1.f + erff(value * 0.70710678118654752f));
                y[e] = from_float<T>(value);
            }
        }
    }
    if (!scores_weight || !last_block_done(done)) return;
    __syncthreads();  // every warp is done with rows_in
    stage_few_rows(y, nullptr, rows, out_features, rows_in, unused_expert, all_rows);
    for (int k = warp; k < classes; k += FEW_WARPS) {
        float sums[1][FEW_ROWS] = {};
        few_rows_dot<1>(scores_weight + static_cast<long long>(k) * out_features, 0, rows_in, out_features, all_rows[0], lane, sums);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < FEW_ROWS; ++r) {
                if (r < rows) scores[r * classes + k] = sums[0][r];
            }
        }
    }
    __syncthreads();
    if (threadIdx.x < rows) {
        choose_expert(scores + threadIdx.x * classes, balancing, classes, expert + threadIdx.x, expert_weight + threadIdx.x);
    }
}
