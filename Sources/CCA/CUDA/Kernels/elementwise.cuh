// elementwise.cuh: the flat grid-stride loop of the element-by-element kernels. Thread i of the grid takes
// elements i, i + (threads in the grid), ...; consecutive threads take consecutive elements, so a warp's
// reads and writes of a row are coalesced. The host launches 256 threads a block and at most 32 blocks per
// multiprocessor (CUDAContext.launchElementwise), so large tensors loop.
#pragma once

template <typename Body>
__device__ __forceinline__ void for_each_element(long long count, Body body) {
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        body(e);
    }
}
