// rms_norm.cu: RMSNorm of each row, y = x / sqrt(mean(x^2) + eps) * weight (MLA's c_q and c_kv norms).
//
// One block of 256 threads per row. Each thread sums the squares of a strided slice of the row, the
// block reduces them (warp shuffles, then one value per warp in shared memory), and every thread
// writes its slice scaled. The input row may be part of a wider matrix (`input_stride` >= width), so
// the norm can read the first columns of a projection in place; the output is dense [rows, width].
#include "common.cuh"

constexpr int THREADS = 256;

extern "C" __global__ void __launch_bounds__(THREADS) rms_norm(
    const T* __restrict__ input, long long input_stride, T* __restrict__ output,
    const float* __restrict__ weight, int width, float epsilon)
{
    __shared__ float warp_sums[THREADS / 32];
    const T* x = input + blockIdx.x * input_stride;
    T* y = output + static_cast<long long>(blockIdx.x) * width;

    float sum = 0.f;
    for (int c = threadIdx.x; c < width; c += THREADS) {
        const float value = to_float(x[c]);
        sum += value * value;
    }
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < THREADS / 32; ++w) total += warp_sums[w];

    const float inverse = 1.f / sqrtf(total / width + epsilon);
    for (int c = threadIdx.x; c < width; c += THREADS) y[c] = from_float<T>(to_float(x[c]) * inverse * weight[c]);
}
