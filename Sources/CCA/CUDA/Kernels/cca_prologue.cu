// cca_prologue.cu: CCA steps 4-8 in one pass, from the pre-convolution latents to attention-ready q, k, v.
//
// Per row t and latent head: the causal convolution stack (conv A: depthwise, kernel 2; conv B: one d x d
// matrix per tap and head; two zero rows of padding before the sequence), the QK-mean of the
// pre-convolution latents, the L2 normalisation to sqrt(d), the key temperature and RoPE. The general path
// (float32, fewer convolutions, any head dim); cca_prologue_mma.cu does bfloat16 with both convolutions.
//
// Tiling: grid (ceil(S / TILE_ROWS), Hq + Hkv, B), one thread per channel of a head (blockDim = d).
// A block handles TILE_ROWS consecutive positions of one head: each thread computes conv A for its own
// channel over TILE_ROWS + 1 positions into shared memory; conv B then reads all d channels of those rows
// (broadcast) and the weights of its output channel (stored [tap][head][in][out], so that the threads of a
// warp read consecutive addresses), keeping TILE_ROWS accumulators in registers, which reuses each weight
// TILE_ROWS times. The normalised rows go through shared memory once more so that each thread can read the
// partner channel of its RoPE pair.
#include "cca_rows.cuh"

#ifndef TILE_ROWS
#define TILE_ROWS 32
#endif

extern "C" __global__ void cca_prologue(
    const T* __restrict__ latents,          // [B*S, latent_stride]: [q0 ; k0] before the convolutions in the first ct columns
    const float* __restrict__ conv_a_weight, // [ct, 2], tap 0 multiplies the older row
    const float* __restrict__ conv_a_bias,   // [ct]
    const float* __restrict__ conv_b_weight, // [2, Hq + Hkv, d, d] as (tap, head, in, out)
    const float* __restrict__ conv_b_bias,   // [ct]
    const float* __restrict__ key_scale,     // [Hkv]: temp, or exp(temp), per key head
    const double* __restrict__ inv_freq,     // [rotary_dim / 2]
    T* __restrict__ q,                       // [B*S, Hq, d]
    T* __restrict__ k,                       // [B*S, Hkv, d]
    int latent_stride, int seq_len, int q_heads, int kv_heads, int head_dim, int rotary_dim,
    int convolutions, int qk_mean)
{
    const int d = head_dim, heads = q_heads + kv_heads;
    const int t0 = blockIdx.x * TILE_ROWS, head = blockIdx.y, o = threadIdx.x;
    const long long row_base = static_cast<long long>(blockIdx.z) * seq_len;

    extern __shared__ float shared[];
    float* mixed = shared;                        // [TILE_ROWS + 1][d]: conv A at positions t0 - 1 + a
    float* rows = shared + (TILE_ROWS + 1) * d;   // [TILE_ROWS][d]: q or k before normalisation
    __shared__ float row_scale[TILE_ROWS];

    const int channel = head * d + o;
    auto latent = [&](int t) { return t >= 0 && t < seq_len ? to_float(latents[(row_base + t) * latent_stride + channel]) : 0.f; };

    // Conv A for this thread's channel: mixed[a] = w0 * x[t0 + a - 2] + w1 * x[t0 + a - 1] + bias.
    if (convolutions >= 1) {
        const float w0 = conv_a_weight[2 * channel], w1 = conv_a_weight[2 * channel + 1], bias = conv_a_bias[channel];
        float older = latent(t0 - 2);
        for (int a = 0; a <= TILE_ROWS; ++a) {
            const float newer = latent(t0 + a - 1);
            mixed[a * d + o] = w0 * older + w1 * newer + bias;
            older = newer;
        }
    }
    __syncthreads();

    float conv[TILE_ROWS];
    if (convolutions == 2) {
        // Conv B: out[t] = W0 . mixed(t - 1) + W1 . mixed(t) + bias, over the d channels of this head.
        const float* tap0 = conv_b_weight + static_cast<long long>(head) * d * d;
        const float* tap1 = conv_b_weight + static_cast<long long>(heads + head) * d * d;
#pragma unroll
        for (int r = 0; r < TILE_ROWS; ++r) conv[r] = 0.f;
        for (int i = 0; i < d; ++i) {
            const float w0 = tap0[i * d + o], w1 = tap1[i * d + o];
            float older = mixed[i];
#pragma unroll
            for (int r = 0; r < TILE_ROWS; ++r) {
                const float newer = mixed[(r + 1) * d + i];
                conv[r] += w0 * older + w1 * newer;
                older = newer;
            }
        }
        const float bias = conv_b_bias[channel];
#pragma unroll
        for (int r = 0; r < TILE_ROWS; ++r) conv[r] += bias;
    } else if (convolutions == 1) {
        // One convolution has one row of padding: its output at t is conv A's value at position t.
#pragma unroll
        for (int r = 0; r < TILE_ROWS; ++r) conv[r] = mixed[(r + 1) * d + o];
    } else {
#pragma unroll
        for (int r = 0; r < TILE_ROWS; ++r) conv[r] = latent(t0 + r);
    }

    // QK-mean from the pre-convolution latents.
    const bool is_key = head >= q_heads;
    const int key_head = is_key ? head - q_heads : head / (q_heads / kv_heads);
#pragma unroll
    for (int r = 0; r < TILE_ROWS; ++r) {
        const int t = t0 + r;
        const float mean = qk_mean && t < seq_len
            ? qk_mean_term(latents + (row_base + t) * latent_stride, head, o, q_heads, kv_heads, d) : 0.f;
        rows[r * d + o] = conv[r] + mean;
    }
    __syncthreads();

    // L2 norm to sqrt(d): one thread per row sums its squares in channel order.
    for (int r = threadIdx.x; r < TILE_ROWS; r += blockDim.x) {
        float sum = 0.f;
        for (int c = 0; c < d; ++c) sum += rows[r * d + c] * rows[r * d + c];
        row_scale[r] = sqrtf(static_cast<float>(d)) / fmaxf(sqrtf(sum), L2_EPSILON);
    }
    __syncthreads();

    const float temperature = is_key ? key_scale[key_head] : 1.f;
    for (int r = 0; r < TILE_ROWS && t0 + r < seq_len; ++r) {
        const int t = t0 + r;
        const float x = rope_channel(rows[r * d + o] * row_scale[r] * temperature,
                                     rows[r * d + rope_partner(o, rotary_dim)] * row_scale[r] * temperature, o, rotary_dim, t, inv_freq);
        T* destination = is_key ? k + ((row_base + t) * kv_heads + key_head) * d
                                : q + ((row_base + t) * q_heads + head) * d;
        destination[o] = from_float<T>(x);
    }
}
