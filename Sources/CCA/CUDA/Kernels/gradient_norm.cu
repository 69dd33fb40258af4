// gradient_norm.cu: the global L2 norm of all gradients (the flat float32 buffer of DeviceParameters) and
// the clipping scale of Training/GradientClipping.swift, in two deterministic passes.
//
// gradient_sum_of_squares: a fixed grid of blocks of THREADS threads (GradientClipping.partialBlocks, a
// constant rather than the GPU's size, so the order of the sum never changes); each thread adds the squares
// of a grid-stride slice in double, and block b writes its block_sum to partials[b].
// gradient_norm: one block of THREADS threads adds the partials in a fixed order and writes
// result = [norm, scale], scale = max_norm / norm when norm > max_norm, else 1 (also for a NaN norm, as on
// the CPU). adamw_update reads the scale from there, so no value goes back to the host.
#include "common.cuh"
#include "reduce.cuh"

constexpr int THREADS = 256;

extern "C" __global__ void __launch_bounds__(THREADS) gradient_sum_of_squares(
    const float* __restrict__ gradients, long long count, double* __restrict__ partials)
{
    double sum = 0.0;
    for (long long i = blockIdx.x * static_cast<long long>(THREADS) + threadIdx.x; i < count;
         i += static_cast<long long>(gridDim.x) * THREADS) {
        const float g = gradients[i];
        sum += static_cast<double>(g) * g;
    }
    const double total = block_sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void __launch_bounds__(THREADS) gradient_norm(
    const double* __restrict__ partials, int partial_count, float max_norm, float* __restrict__ result)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < partial_count; i += THREADS) sum += partials[i];
    const double total = block_sum(sum);
    if (threadIdx.x == 0) {
        const float norm = static_cast<float>(sqrt(total));
        result[0] = norm;
        result[1] = norm > max_norm ? max_norm / norm : 1.f;
    }
}
