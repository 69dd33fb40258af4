// rotary.cu: NeoX "rotate-half" rotary position embedding, in place, on a channel range of each head, and
// its backward pass: the inverse rotation (sine_sign -1), since a rotation's transpose is its inverse.
//
// Row r of the [rows, heads, ...] data is at position r % seq_len (every sequence starts at 0), or at
// positions[r] when positions is given (the new rows of a decode step, each at its own position). Within
// each head, channels offset+i and offset+i+rotary_dim/2 form a pair rotated by position * inv_freq[i].
// One thread per (row, pair): the angle and its sine and cosine are computed once, in double as the CPU path
// does (so that long positions keep their precision), and serve the pair in every head of the row: the
// double sincos is most of the kernel's work. The rotation runs in float.
#include "common.cuh"

extern "C" __global__ void rotary_embedding(
    T* data, int rows, int seq_len, const int* __restrict__ positions, int heads, long long row_stride, int head_stride,
    int offset, int rotary_dim, const double* __restrict__ inv_freq, float sine_sign)
{
    const int half = rotary_dim / 2;
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= static_cast<long long>(rows) * half) return;
    const int i = static_cast<int>(index % half);
    const long long row = index / half;

    double sine, cosine;
    const long long position = positions != nullptr ? positions[row] : row % seq_len;
    sincos(static_cast<double>(position) * inv_freq[i], &sine, &cosine);
    const float c = static_cast<float>(cosine), s = sine_sign * static_cast<float>(sine);
    T* x = data + row * row_stride + offset;
    for (int head = 0; head < heads; ++head, x += head_stride) {
        const float x1 = to_float(x[i]), x2 = to_float(x[i + half]);
        x[i] = from_float<T>(x1 * c - x2 * s);
        x[i + half] = from_float<T>(x2 * c + x1 * s);
    }
}
