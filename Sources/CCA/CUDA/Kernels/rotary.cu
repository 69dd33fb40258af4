// rotary.cu: NeoX "rotate-half" rotary position embedding, in place, on a channel range of each head, and
// its backward pass: the inverse rotation (sine_sign -1), since a rotation's transpose is its inverse.
//
// Row r of the [rows, heads, ...] data is at position r % seq_len (every sequence starts at 0), or at
// positions[r] when positions is given (the new rows of a decode step, each at its own position). Within
// each head, channels offset+i and offset+i+rotary_dim/2 form a pair rotated by position * inv_freq[i].
// One thread per (row, N consecutive pairs): the angles and their sines and cosines are computed once, in
// double as the CPU path does (so that long positions keep their precision), and serve those pairs in every
// head of the row, of `data` and, when given, of `second` (the keys beside the queries: one launch for
// both, with the same positions and head layout, `second_heads` heads and rows `second_row_stride` apart):
// the double sincos is the costly part. N = 8 (16-byte words of bfloat16) when the host found half the
// rotary dim, the offsets and strides multiples of 8 and the data 16-byte aligned (`step`), else 1. The
// heads go HEADS_AT_ONCE at a time, all loaded before any is stored, so that a thread has several loads in
// flight. The rotation runs in float.
#include "common.cuh"
#include "elementwise.cuh"

constexpr int HEADS_AT_ONCE = 4;

template <int N> __device__ __forceinline__ void rotate_heads(T* x, int heads, int head_stride, int half, const float* c,
                                                             const float* s)
{
    for (int head = 0; head < heads; head += HEADS_AT_ONCE) {
        Elements<N> first[HEADS_AT_ONCE], second[HEADS_AT_ONCE];
        for (int h = 0; h < HEADS_AT_ONCE; ++h) {
            if (head + h >= heads) break;
            first[h] = load<N>(x + (head + h) * head_stride);
            second[h] = load<N>(x + (head + h) * head_stride + half);
        }
        for (int h = 0; h < HEADS_AT_ONCE; ++h) {
            if (head + h >= heads) break;
            Elements<N> out1, out2;
            for (int k = 0; k < N; ++k) {
                const float x1 = first[h].value[k], x2 = second[h].value[k];
                out1.value[k] = x1 * c[k] - x2 * s[k];
                out2.value[k] = x2 * c[k] + x1 * s[k];
            }
            store_elements(x + (head + h) * head_stride, out1);
            store_elements(x + (head + h) * head_stride + half, out2);
        }
    }
}

template <int N> __device__ void rotate_rows(
    T* data, int rows, int seq_len, const int* __restrict__ positions, int heads, long long row_stride, int head_stride,
    int offset, int rotary_dim, const double* __restrict__ inv_freq, float sine_sign, T* second, int second_heads,
    long long second_row_stride)
{
    const int half = rotary_dim / 2, groups = half / N;
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= static_cast<long long>(rows) * groups) return;
    const int i = static_cast<int>(index % groups) * N;
    const long long row = index / groups;

    const long long position = positions != nullptr ? positions[row] : row % seq_len;
    float c[N], s[N];
    for (int k = 0; k < N; ++k) {
        double sine, cosine;
        sincos(static_cast<double>(position) * inv_freq[i + k], &sine, &cosine);
        c[k] = static_cast<float>(cosine);
        s[k] = sine_sign * static_cast<float>(sine);
    }
    rotate_heads<N>(data + row * row_stride + offset + i, heads, head_stride, half, c, s);
    if (second) rotate_heads<N>(second + row * second_row_stride + offset + i, second_heads, head_stride, half, c, s);
}

extern "C" __global__ void rotary_embedding(
    T* data, int rows, int seq_len, const int* __restrict__ positions, int heads, long long row_stride, int head_stride,
    int offset, int rotary_dim, const double* __restrict__ inv_freq, float sine_sign, T* second, int second_heads,
    long long second_row_stride, int step)
{
    if (step == 8) {
        rotate_rows<8>(data, rows, seq_len, positions, heads, row_stride, head_stride, offset, rotary_dim, inv_freq, sine_sign,
                       second, second_heads, second_row_stride);
    } else {
        rotate_rows<1>(data, rows, seq_len, positions, heads, row_stride, head_stride, offset, rotary_dim, inv_freq, sine_sign,
                       second, second_heads, second_row_stride);
    }
}
