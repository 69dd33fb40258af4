// cca_prologue_heads.cu: the per-row, per-head part of CCA's prologue for training, after the
// convolutions: the QK-mean (Operations/QKMean.swift), the L2 normalisation to sqrt(d) with the key
// temperature (Operations/L2Normalization.swift) and RoPE (Operations/RotaryEmbedding.swift), forward and
// backward. Nothing is saved between the two: the backward pass recomputes q and k before the
// normalisation, and their norms, from the convolution output and the latents.
//
// Inputs: `mixed` [B*S, ct] float32, the convolution output without conv B's bias (nullptr with no
// convolution: then the latents themselves); `conv_b_bias` [ct] or nullptr; `latents` [B*S, ct] (T, rows
// `latent_stride` apart); `temperature` [Hkv] as stored, applied as itself (linear) or exp of itself (exp).
// Row r is at position r % seq_len, or positions[r] (int32 [B*S], positions within packed documents) when given.
//
// prologue_heads_forward / prologue_heads_backward: grid (B*S, Hq + Hkv), one block per row and head
// (query heads first), blockDim = head_dim rounded up to a multiple of 32 (at most 1024); thread o owns
// channel o. The head's norm and dot products are block sums (reduce.cuh); RoPE partners meet in shared
// memory. The backward pass rotates dq / dk back, then applies the L2 backward:
// dpre = (c/|x|) * (dy * s - x * (x . dy * s) / |x|^2) (the projection term dropped where |x| <= eps),
// written to d_pre [B*S, ct] float32 (dq | dk before the normalisation: dMixed); for key heads,
// d_temperature_rows[row, j] = sum(dy * x * c / |x|), times exp(temp[j]) in exp mode (the chain factor),
// which column_sums reduces over rows.
// key_scales: the factor each key head is multiplied by, temp or exp(temp), for the fused inference prologue
// (cca_prologue*.cu), made from the temperature as it is at each forward pass; one thread per KV head.
// qk_mean_backward: one thread per element of d_mean [B*S, ct] float32, the QK-mean's share of dLatents:
// a query channel gets dq / 2 + dk / (2g), a key channel the sum of its group's dq / 2 plus dk / 2.
#include "common.cuh"
#include "elementwise.cuh"
#include "reduce.cuh"

constexpr int MAX_HEAD_DIM = 1024;
// torch.finfo(float32).eps, the clamp of the reference QK norm.
constexpr float L2_EPSILON = 1.1920928955078125e-7f;

// Channel o of head `head` at `row` before the normalisation: convolution output, conv B's bias, QK-mean.
__device__ __forceinline__ float pre_normalisation(const float* mixed, const float* conv_b_bias, const T* latents,
                                                   long long latent_stride, long long row, int head, int o,
                                                   int q_heads, int kv_heads, int d, int qk_mean) {
    const int channel = head * d + o, eq = q_heads * d, ct = (q_heads + kv_heads) * d, group = q_heads / kv_heads;
    const T* latent = latents + row * latent_stride;
    float value = mixed ? mixed[row * ct + channel] : to_float(latent[channel]);
    if (conv_b_bias) value += conv_b_bias[channel];
    if (!qk_mean) return value;
    if (head < q_heads) return value + (to_float(latent[channel]) + to_float(latent[eq + (head / group) * d + o])) / 2.f;
    const int j = head - q_heads;
    float sum = 0.f;
    for (int h = j * group; h < (j + 1) * group; ++h) sum += to_float(latent[h * d + o]);
    return value + (sum / group + to_float(latent[eq + j * d + o])) / 2.f;
}

__device__ __forceinline__ float key_scale(const float* temperature, int j, int exp_temperature) {
    return exp_temperature ? expf(temperature[j]) : temperature[j];
}

// Channel o (< rotary_dim) of a pair rotated by position * inv_freq[i], or back by minus that angle.
__device__ __forceinline__ float rotate(float x, float partner, int o, int rotary_dim, long long position,
                                        const double* inv_freq, bool inverse) {
    const int half = rotary_dim / 2, i = o < half ? o : o - half;
    double sine, cosine;
    sincos(static_cast<double>(position) * inv_freq[i], &sine, &cosine);
    const float c = static_cast<float>(cosine), s = static_cast<float>(inverse ? -sine : sine);
    return o < half ? x * c - partner * s : x * c + partner * s;
}

__device__ __forceinline__ long long position_of(long long row, const int* positions, int seq_len) {
    return positions != nullptr ? positions[row] : row % seq_len;
}

__device__ __forceinline__ int rotary_partner(int o, int rotary_dim) {
    return o < rotary_dim / 2 ? o + rotary_dim / 2 : o - rotary_dim / 2;
}

extern "C" __global__ void prologue_heads_forward(
    const float* __restrict__ mixed, const float* __restrict__ conv_b_bias, const T* __restrict__ latents,
    long long latent_stride, const float* __restrict__ temperature, int exp_temperature,
    const double* __restrict__ inv_freq, int rotary_dim, T* __restrict__ q, T* __restrict__ k,
    const int* __restrict__ positions, int seq_len, int q_heads, int kv_heads, int head_dim, int qk_mean)
{
    __shared__ float values[MAX_HEAD_DIM];
    const long long row = blockIdx.x;
    const int head = blockIdx.y, o = threadIdx.x, d = head_dim;
    const bool active = o < d, is_key = head >= q_heads;
    const float x = active ? pre_normalisation(mixed, conv_b_bias, latents, latent_stride, row, head, o, q_heads,
                                               kv_heads, d, qk_mean) : 0.f;
    const float norm = sqrtf(block_sum(x * x));
    const float scale = is_key ? key_scale(temperature, head - q_heads, exp_temperature) : 1.f;
    const float y = x * (sqrtf(static_cast<float>(d)) / fmaxf(norm, L2_EPSILON) * scale);
    if (active) values[o] = y;
    __syncthreads();
    if (!active) return;
    const float out = o < rotary_dim
        ? rotate(y, values[rotary_partner(o, rotary_dim)], o, rotary_dim, position_of(row, positions, seq_len), inv_freq,
                 false) : y;
    T* destination = is_key ? k + (row * kv_heads + head - q_heads) * d : q + (row * q_heads + head) * d;
    destination[o] = from_float<T>(out);
}

extern "C" __global__ void prologue_heads_backward(
    const float* __restrict__ mixed, const float* __restrict__ conv_b_bias, const T* __restrict__ latents,
    long long latent_stride, const float* __restrict__ temperature, int exp_temperature,
    const double* __restrict__ inv_freq, int rotary_dim, const T* __restrict__ dq, const T* __restrict__ dk,
    float* __restrict__ d_pre, float* __restrict__ d_temperature_rows,
    const int* __restrict__ positions, int seq_len, int q_heads, int kv_heads, int head_dim, int qk_mean)
{
    __shared__ float values[MAX_HEAD_DIM];
    const long long row = blockIdx.x;
    const int head = blockIdx.y, o = threadIdx.x, d = head_dim, j = head - q_heads;
    const bool active = o < d, is_key = head >= q_heads;
    const float x = active ? pre_normalisation(mixed, conv_b_bias, latents, latent_stride, row, head, o, q_heads,
                                               kv_heads, d, qk_mean) : 0.f;
    const float norm = sqrtf(block_sum(x * x));

    float dy = 0.f;
    if (active) dy = to_float(is_key ? dk[(row * kv_heads + j) * d + o] : dq[(row * q_heads + head) * d + o]);
    values[o] = dy;
    __syncthreads();
    if (active && o < rotary_dim) {
        dy = rotate(dy, values[rotary_partner(o, rotary_dim)], o, rotary_dim, position_of(row, positions, seq_len), inv_freq, true);
    }

    const float unit = sqrtf(static_cast<float>(d)) / fmaxf(norm, L2_EPSILON);
    const float scale = is_key ? key_scale(temperature, j, exp_temperature) : 1.f;
    const float scale_gradient = block_sum(dy * x * unit);
    const float dot = block_sum(x * dy * scale);
    const float projection = norm > L2_EPSILON ? dot / (norm * norm) : 0.f;
    const int ct = (q_heads + kv_heads) * d;
    if (active) d_pre[row * ct + head * d + o] = unit * (dy * scale - x * projection);
    if (is_key && o == 0) d_temperature_rows[row * kv_heads + j] = scale_gradient * (exp_temperature ? scale : 1.f);
}

extern "C" __global__ void qk_mean_backward(const float* __restrict__ d_pre, float* __restrict__ d_mean, long long rows,
                                            int q_heads, int kv_heads, int head_dim)
{
    const int d = head_dim, eq = q_heads * d, ct = (q_heads + kv_heads) * d, group = q_heads / kv_heads;
    for_each_element(rows * ct, [&](long long e) {
        const long long row = e / ct;
        const int channel = static_cast<int>(e % ct), c = channel % d;
        const float* dq = d_pre + row * ct;
        const float* dk = dq + eq;
        float value;
        if (channel < eq) {
            value = dq[channel] / 2.f + dk[(channel / d / group) * d + c] / (2.f * group);
        } else {
            const int j = (channel - eq) / d;
            value = 0.f;
            for (int h = j * group; h < (j + 1) * group; ++h) value += dq[h * d + c] / 2.f;
            value += dk[j * d + c] / 2.f;
        }
        d_mean[e] = value;
    });
}

extern "C" __global__ void key_scales(const float* __restrict__ temperature, float* __restrict__ scales, int kv_heads,
                                      int exp_temperature)
{
    for_each_element(kv_heads, [&](long long j) { scales[j] = key_scale(temperature, static_cast<int>(j), exp_temperature); });
}
