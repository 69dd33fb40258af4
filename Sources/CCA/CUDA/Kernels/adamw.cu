// adamw.cu: one AdamW step over every parameter at once (the GPU twin of Operations/AdamW.swift), on the
// flat buffers of DeviceParameters: float32 master weights, their T copy for compute, float32 gradients
// and moments, all [count] with the same layout.
//
// One thread per element, a flat grid-stride loop. Elements [0, decayed_end) are the matrices, which are
// decayed; the rest (norms, biases, temperatures) are not: DeviceParameters lays the matrices out first, so
// a single boundary replaces a per-element flag. `clip` is nullptr or the [norm, scale] that
// gradient_norm.cu wrote: every gradient is multiplied by the scale as it is read, so clipping costs no pass
// of its own. The T copy is written from the updated master value in the same pass; in float32 storage it
// is the master buffer itself and the second write stores the same value.
#include "common.cuh"
#include "elementwise.cuh"
#include "elementwise.cuh"

extern "C" __global__ void adamw_update(
    float* master, T* compute, const float* __restrict__ gradients, float* __restrict__ first_moments,
    float* __restrict__ second_moments, long long count, long long decayed_end, const float* __restrict__ clip,
    float rate, float beta1, float beta2, float epsilon, float weight_decay, float correction1, float correction2)
{
    const float scale = clip ? clip[1] : 1.f;
    for_each_element(count, [&](long long i) {
        const float g = gradients[i] * scale;
        const float m = beta1 * first_moments[i] + (1.f - beta1) * g;
        const float v = beta2 * second_moments[i] + (1.f - beta2) * g * g;
        const float update = (m / correction1) / (sqrtf(v / correction2) + epsilon);
        const float decay = i < decayed_end ? weight_decay : 0.f;
        float parameter = master[i];
        parameter -= rate * (update + decay * parameter);
        first_moments[i] = m;
        second_moments[i] = v;
        master[i] = parameter;
        compute[i] = from_float<T>(parameter);
    });
}
