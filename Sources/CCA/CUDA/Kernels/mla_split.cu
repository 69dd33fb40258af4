// mla_split.cu: assembles MLA's per-head keys and values from the up-projected c_kv and the shared RoPE key.
//
// key_value is [rows, heads, nope_dim + value_dim] (the output of kv_b_proj); the decoupled RoPE key of
// each row (already rotated) is rope_dim values at rope_key + row * rope_key_stride, a column range of
// kv_a_proj_with_mqa's output. Writes key [rows, heads, nope_dim + rope_dim] = [k_nope ; k_rope]
// (k_rope broadcast to every head) and value [rows, heads, value_dim]. One thread per (row, head, channel)
// of the concatenated [key ; value] row.
//
// mla_split_backward: the gradients back: d_key_value [rows, heads, nope_dim + value_dim] gathers each
// head's d_key no-PE part and d_value, and the shared RoPE key's gradient (rope_dim values at d_rope_key +
// row * d_rope_key_stride, a column range of kv_a_proj_with_mqa's output gradient) is the sum over heads
// of d_key's RoPE parts, in head order (deterministic, no atomics). One thread per element of
// [d_key_value row ; d_rope_key row].
#include "common.cuh"

extern "C" __global__ void mla_split(
    const T* __restrict__ key_value, const T* __restrict__ rope_key, long long rope_key_stride,
    T* __restrict__ key, T* __restrict__ value, int rows, int heads, int nope_dim, int rope_dim, int value_dim)
{
    const int width = nope_dim + rope_dim + value_dim;
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= static_cast<long long>(rows) * heads * width) return;
    const int c = static_cast<int>(index % width);
    const long long row_head = index / width, row = row_head / heads;
    const T* source = key_value + row_head * (nope_dim + value_dim);
    if (c < nope_dim) {
        key[row_head * (nope_dim + rope_dim) + c] = source[c];
    } else if (c < nope_dim + rope_dim) {
        key[row_head * (nope_dim + rope_dim) + c] = rope_key[row * rope_key_stride + c - nope_dim];
    } else {
        value[row_head * value_dim + c - nope_dim - rope_dim] = source[c - rope_dim];
    }
}

extern "C" __global__ void mla_split_backward(
    const T* __restrict__ d_key, const T* __restrict__ d_value, T* __restrict__ d_key_value, T* __restrict__ d_rope_key,
    long long d_rope_key_stride, int rows, int heads, int nope_dim, int rope_dim, int value_dim)
{
    const int head_width = nope_dim + value_dim, width = heads * head_width + rope_dim;
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= static_cast<long long>(rows) * width) return;
    const long long row = index / width;
    const int c = static_cast<int>(index % width);
    if (c < heads * head_width) {
        const long long row_head = row * heads + c / head_width;
        const int i = c % head_width;
        d_key_value[row * heads * head_width + c] =
            i < nope_dim ? d_key[row_head * (nope_dim + rope_dim) + i] : d_value[row_head * value_dim + i - nope_dim];
    } else {
        const int i = c - heads * head_width;
        float sum = 0.f;
        for (int h = 0; h < heads; ++h) sum += to_float(d_key[(row * heads + h) * (nope_dim + rope_dim) + nope_dim + i]);
        d_rope_key[row * d_rope_key_stride + i] = from_float<T>(sum);
    }
}
