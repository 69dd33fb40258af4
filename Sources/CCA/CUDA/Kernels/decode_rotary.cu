// decode_rotary.cu: rotary position embedding in place for the new rows of a decode step, each row at its own
// position (positions[r]): rotary.cu's rotation, where rows are not whole sequences starting at 0.
//
// One thread per (row, head, pair); channels offset+i and offset+i+rotary_dim/2 of a head are rotated by
// position * inv_freq[i], the angle and its sine and cosine in double as the CPU path computes them.
#include "common.cuh"

extern "C" __global__ void decode_rotary(
    T* data, const int* __restrict__ positions, int rows, int heads, long long row_stride, int head_stride, int offset,
    int rotary_dim, const double* __restrict__ inv_freq)
{
    const int half = rotary_dim / 2;
    const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (index >= static_cast<long long>(rows) * heads * half) return;
    const int i = static_cast<int>(index % half);
    const int head = static_cast<int>((index / half) % heads);
    const long long row = index / (static_cast<long long>(half) * heads);

    double sine, cosine;
    sincos(static_cast<double>(positions[row]) * inv_freq[i], &sine, &cosine);
    const float c = static_cast<float>(cosine), s = static_cast<float>(sine);
    T* x = data + row * row_stride + static_cast<long long>(head) * head_stride + offset;
    const float x1 = to_float(x[i]), x2 = to_float(x[i + half]);
    x[i] = from_float<T>(x1 * c - x2 * s);
    x[i + half] = from_float<T>(x2 * c + x1 * s);
}
