// cca_values.cu: CCA step 3, the value shift: v[t] = [x_t . Wv_current | x_{t-1} . Wv_delayed] (zero at t = 0),
// or [x_t . Wv_current | x_t . Wv_delayed] without the shift, gathered from the fused projection's rows.
//
// Tiling: one thread per unit of v ([B*S, ek]), a flat grid-stride loop; consecutive threads take
// consecutive units, so reads and writes are coalesced. cca_values copies single elements;
// cca_values_vectors copies 16 bytes at a time, for widths and offsets that are multiples of 16 bytes.
//
// cca_values_backward (Operations/ValueShift.swift's backward): the gradient of the projections from dv
// [B*S, ek], into the same columns of a [B*S, stride] gradient: with the shift, row t's delayed half
// receives row t + 1's, and 0 on the last row of each sequence (whose delayed value no row of this chunk
// reads); without it, a copy. One thread per element, the same flat grid-stride loop.
//
// Packed documents: with `positions` (int32 [B*S], each row's position within its document, or null), a
// document's first row has no delayed value and its last row's delayed half passes nothing back.
#include "common.cuh"
#include "elementwise.cuh"

// The shift in units of `Unit`: `stride`, `first` and `width` count units, not elements.
template <typename Unit>
__device__ __forceinline__ void shift_values(const Unit* __restrict__ projections, Unit* __restrict__ v, long long rows,
                                             int stride, int first, int width, const int* positions, int seq_len,
                                             int value_shift) {
    const int half = width / 2;
    const long long count = rows * width;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long row = e / width;
        const int column = static_cast<int>(e % width);
        const bool delayed = value_shift && column >= half;
        const bool starts = positions != nullptr ? positions[row] == 0 : row % seq_len == 0;
        v[e] = delayed && starts ? Unit{} : projections[(row - delayed) * stride + first + column];
    }
}

extern "C" __global__ void cca_values(
    const T* __restrict__ projections,  // [B*S, stride]: columns [first, first + ek/2) x_t . Wv_current, then ek/2 of x_t . Wv_delayed
    T* __restrict__ v,                  // [B*S, ek]
    long long rows, int stride, int first, int value_width, const int* __restrict__ positions, int seq_len, int value_shift)
{
    shift_values(projections, v, rows, stride, first, value_width, positions, seq_len, value_shift);
}

// The same with every count in 16-byte units.
extern "C" __global__ void cca_values_vectors(const uint4* __restrict__ projections, uint4* __restrict__ v, long long rows,
                                              int stride, int first, int value_width, const int* __restrict__ positions,
                                              int seq_len, int value_shift)
{
    shift_values(projections, v, rows, stride, first, value_width, positions, seq_len, value_shift);
}

extern "C" __global__ void cca_values_backward(
    const T* __restrict__ dv,             // [B*S, ek]
    T* __restrict__ d_projections,        // [B*S, stride]: written in columns [first, first + ek)
    long long rows, int stride, int first, int value_width, const int* __restrict__ positions, int seq_len, int value_shift)
{
    const int half = value_width / 2;
    for_each_element(rows * value_width, [&](long long e) {
        const long long row = e / value_width;
        const int column = static_cast<int>(e % value_width);
        const bool delayed = value_shift && column >= half;
        const bool ends = row % seq_len == seq_len - 1 || (positions != nullptr && positions[row + 1] == 0);
        d_projections[row * stride + first + column] = delayed && ends ? from_float<T>(0.f) : dv[e + (delayed ? value_width : 0)];
    });
}
