// swiglu.cu: the SwiGLU activation h = silu(gate) * up on the fused [rows, 2I] gate|up projection output
// (gate columns first), and its backward pass: the GPU twin of Operations/SwiGLU.swift.
//
// One thread per element of h [rows, I], a flat grid-stride loop; consecutive threads take consecutive
// columns, so every read and write is coalesced. The backward pass recomputes sigma(gate) instead of
// reading it back from the forward pass, which saves a [rows, I] float32 buffer per layer.
#include "common.cuh"
#include "elementwise.cuh"

__device__ __forceinline__ float sigmoid(float z) { return 1.f / (1.f + expf(-z)); }

extern "C" __global__ void swiglu_forward(const T* __restrict__ gate_up, T* __restrict__ h, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const long long row = e / width;
        const int i = static_cast<int>(e % width);
        const float z = to_float(gate_up[row * 2 * width + i]), u = to_float(gate_up[row * 2 * width + width + i]);
        h[e] = from_float<T>(z * sigmoid(z) * u);
    });
}

// d gate = dh * u * sigma * (1 + z * (1 - sigma)), d up = dh * z * sigma, into dense [rows, 2I].
extern "C" __global__ void swiglu_backward(const T* __restrict__ dh, const T* __restrict__ gate_up,
                                           T* __restrict__ d_gate_up, long long rows, int width)
{
    for_each_element(rows * width, [&](long long e) {
        const long long row = e / width;
        const int i = static_cast<int>(e % width);
        const long long gate = row * 2 * width + i, up = gate + width;
        const float z = to_float(gate_up[gate]), u = to_float(gate_up[up]), g = to_float(dh[e]);
        const float sigma = sigmoid(z);
        d_gate_up[gate] = from_float<T>(g * u * sigma * (1.f + z * (1.f - sigma)));
        d_gate_up[up] = from_float<T>(g * z * sigma);
    });
}
