// residual.cu: the residual add y = a + b of the pre-norm blocks (and of their gradients), elementwise in
// float, rounded to T. `y` may be `a` or `b` (an in-place add): each element is read and written by the
// same thread. A flat grid-stride loop over steps of N consecutive elements: N = 8 (16-byte words of
// bfloat16) when the host found the count a multiple of 8 and the tensors 16-byte aligned (`step`), else 1.
#include "common.cuh"
#include "elementwise.cuh"

template <int N> __device__ void add_elements(const T* a, const T* b, T* y, long long count)
{
    for_each_element(count / N, [&](long long e) {
        const Elements<N> x = load<N>(a + e * N), z = load<N>(b + e * N);
        Elements<N> sum;
        for (int k = 0; k < N; ++k) sum.value[k] = x.value[k] + z.value[k];
        store_elements(y + e * N, sum);
    });
}

extern "C" __global__ void residual_add(const T* a, const T* b, T* y, long long count, int step)
{
    if (step == 8) add_elements<8>(a, b, y, count);
    else add_elements<1>(a, b, y, count);
}
