// cca_rows.cuh: the per-channel pieces of CCA's steps 5-8 that the fused prologues share (cca_prologue.cu over
// whole sequences, decode_cca_prologue.cu over the new rows of a decode step), so both compute them alike.
#pragma once
#include "common.cuh"

// torch.finfo(float32).eps, the clamp of the reference QK norm.
constexpr float L2_EPSILON = 1.1920928955078125e-7f;

// The QK-mean term of channel o of latent head `head` (query heads first, then key heads) from one row of the
// pre-convolution latents [q0 | k0]: query head h gets (q0[h] + k0[h/g]) / 2, key head j gets
// (mean of q0 over its group + k0[j]) / 2.
__device__ __forceinline__ float qk_mean_term(const T* row, int head, int o, int q_heads, int kv_heads, int d) {
    const int group = q_heads / kv_heads;
    const bool is_key = head >= q_heads;
    const int key_head = is_key ? head - q_heads : head / group;
    const float key_latent = to_float(row[q_heads * d + key_head * d + o]);
    if (!is_key) return (to_float(row[head * d + o]) + key_latent) / 2.f;
    float sum = 0.f;
    for (int h = key_head * group; h < (key_head + 1) * group; ++h) sum += to_float(row[h * d + o]);
    return (sum / group + key_latent) / 2.f;
}

// The channel whose value channel o is rotated with (NeoX rotate-half pairs o and o + rotary_dim/2).
__device__ __forceinline__ int rope_partner(int o, int rotary_dim) {
    const int half = rotary_dim / 2;
    return o < half ? o + half : o - half;
}

// Channel o, of value x and pair partner `other`, rotated by position * inv_freq[pair] (the angle in double, as
// the CPU path computes it); channels past rotary_dim are returned unchanged.
__device__ __forceinline__ float rope_channel(float x, float other, int o, int rotary_dim, long long position,
                                              const double* __restrict__ inv_freq) {
    if (o >= rotary_dim) return x;
    const int half = rotary_dim / 2;
    double sine, cosine;
    sincos(static_cast<double>(position) * inv_freq[o < half ? o : o - half], &sine, &cosine);
    const float c = static_cast<float>(cosine), s = static_cast<float>(sine);
    return o < half ? x * c - other * s : x * c + other * s;
}
