// residual.cu: the residual add y = a + b of the pre-norm blocks (and of their gradients), elementwise in
// float, rounded to T. `y` may be `a` or `b` (an in-place add): each element is read and written by the
// same thread. One thread per element, a flat grid-stride loop.
#include "common.cuh"
#include "elementwise.cuh"

extern "C" __global__ void residual_add(const T* a, const T* b, T* y, long long count)
{
    for_each_element(count, [&](long long e) {
        y[e] = from_float<T>(to_float(a[e]) + to_float(b[e]));
    });
}
