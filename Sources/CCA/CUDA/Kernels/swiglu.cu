// swiglu.cu: the SwiGLU activation h = silu(gate) * up on the fused [rows, 2I] gate|up projection output
// (gate columns first), and its backward pass: the GPU twin of Operations/SwiGLU.swift.
//
// A flat grid-stride loop over h [rows, I], eight consecutive columns a step when the rows are 16-byte aligned
// (one 16-byte word of bfloat16), else one; consecutive threads take consecutive columns, so every read and
// write is coalesced. The backward pass recomputes sigma(gate) instead of
// reading it back from the forward pass, which saves a [rows, I] float32 buffer per layer.
#include "common.cuh"
#include "elementwise.cuh"

__device__ __forceinline__ float sigmoid(float z) { return 1.f / (1.f + expf(-z)); }

// Each step takes N consecutive columns of one row.
template <int N> __device__ void swiglu_forward_rows(const T* __restrict__ gate_up, T* __restrict__ h, long long rows, int width)
{
    const long long per_row = width / N;
    for_each_element(rows * per_row, [&](long long e) {
        const long long row = e / per_row;
        const int i = static_cast<int>(e - row * per_row) * N;
        const Elements<N> z = load<N>(gate_up + row * 2 * width + i), u = load<N>(gate_up + row * 2 * width + width + i);
        Elements<N> out;
        for (int k = 0; k < N; ++k) out.value[k] = z.value[k] * sigmoid(z.value[k]) * u.value[k];
        store_elements(h + row * width + i, out);
    });
}

// d gate = dh * u * sigma * (1 + z * (1 - sigma)), d up = dh * z * sigma, into dense [rows, 2I].
template <int N> __device__ void swiglu_backward_rows(const T* __restrict__ dh, const T* __restrict__ gate_up,
                                                      T* __restrict__ d_gate_up, long long rows, int width)
{
    const long long per_row = width / N;
    for_each_element(rows * per_row, [&](long long e) {
        const long long row = e / per_row;
        const int i = static_cast<int>(e - row * per_row) * N;
        const long long gate = row * 2 * width + i, up = gate + width;
        const Elements<N> z = load<N>(gate_up + gate), u = load<N>(gate_up + up), g = load<N>(dh + row * width + i);
        Elements<N> d_gate, d_up;
        for (int k = 0; k < N; ++k) {
            const float sigma = sigmoid(z.value[k]);
            d_gate.value[k] = g.value[k] * u.value[k] * sigma * (1.f + z.value[k] * (1.f - sigma));
            d_up.value[k] = g.value[k] * z.value[k] * sigma;
        }
        store_elements(d_gate_up + gate, d_gate);
        store_elements(d_gate_up + up, d_up);
    });
}

// step: 8 when the host found the rows 16-byte aligned (CUDAContext.elementsPerStep), else 1.
extern "C" __global__ void swiglu_forward(const T* __restrict__ gate_up, T* __restrict__ h, long long rows, int width, int step)
{
    if (step == 8) swiglu_forward_rows<8>(gate_up, h, rows, width);
    else swiglu_forward_rows<1>(gate_up, h, rows, width);
}

extern "C" __global__ void swiglu_backward(const T* __restrict__ dh, const T* __restrict__ gate_up,
                                           T* __restrict__ d_gate_up, long long rows, int width, int step)
{
    if (step == 8) swiglu_backward_rows<8>(dh, gate_up, d_gate_up, rows, width);
    else swiglu_backward_rows<1>(dh, gate_up, d_gate_up, rows, width);
}
