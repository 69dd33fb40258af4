// adamw.cu: one AdamW step over every parameter at once (the GPU twin of Operations/AdamW.swift), on the
// flat buffers of DeviceParameters: float32 master weights, their T copy for compute, float32 gradients
// and moments, all [count] with the same layout.
//
// A flat grid-stride loop, eight consecutive elements a step as 16-byte words: DeviceParameters pads every
// buffer to a multiple of 64 elements (the host checks the count) and starts every parameter at one, so a
// step that starts below the decay boundary below holds, past it, only padding. Elements [0, decayed_end) are the matrices, which are
// decayed; the rest (norms, biases, temperatures) are not: DeviceParameters lays the matrices out first, so
// a single boundary replaces a per-element flag. `clip` is nullptr or the [norm, scale] that
// gradient_norm.cu wrote: every gradient is multiplied by the scale as it is read, so clipping costs no pass
// of its own. The T copy is written from the updated master value in the same pass; in float32 storage it
// is the master buffer itself and the second write stores the same value.
#include "common.cuh"
#include "elementwise.cuh"

extern "C" __global__ void adamw_update(
    float* master, T* compute, const float* __restrict__ gradients, float* __restrict__ first_moments,
    float* __restrict__ second_moments, long long count, long long decayed_end, const float* __restrict__ clip,
    float rate, float beta1, float beta2, float epsilon, float weight_decay, float correction1, float correction2)
{
    constexpr int N = 8;
    const float scale = clip ? clip[1] : 1.f;
    for_each_element(count / N, [&](long long e) {
        const long long i = e * N;
        const Elements<N> g = load<N>(gradients + i), m0 = load<N>(first_moments + i), v0 = load<N>(second_moments + i);
        Elements<N> p = load<N>(master + i), m, v;
        const float decay = i < decayed_end ? weight_decay : 0.f;
        for (int k = 0; k < N; ++k) {
            const float gradient = g.value[k] * scale;
            m.value[k] = beta1 * m0.value[k] + (1.f - beta1) * gradient;
            v.value[k] = beta2 * v0.value[k] + (1.f - beta2) * gradient * gradient;
            const float update = (m.value[k] / correction1) / (sqrtf(v.value[k] / correction2) + epsilon);
            p.value[k] -= rate * (update + decay * p.value[k]);
        }
        store_elements(first_moments + i, m);
        store_elements(second_moments + i, v);
        store_elements(master + i, p);
        store_elements(compute + i, p);
    });
}
