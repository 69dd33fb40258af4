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

// N consecutive elements in float, moved between memory and registers as whole 16-byte words when N is 8:
// one word of bfloat16, two of float32. The kernels whose row widths are multiples of 8 use N = 8, which
// needs 16-byte aligned row starts (DeviceTensor allocations are 256-byte aligned, so widths that are
// multiples of 8 keep every row aligned); the others use N = 1.
template <int N> struct Elements {
    float value[N];
};

__device__ __forceinline__ Elements<1> load_elements(const float* p, Elements<1>) { return {{*p}}; }
__device__ __forceinline__ Elements<1> load_elements(const bf16* p, Elements<1>) { return {{to_float(*p)}}; }
__device__ __forceinline__ void store_elements(float* p, const Elements<1>& e) { *p = e.value[0]; }
__device__ __forceinline__ void store_elements(bf16* p, const Elements<1>& e) { *p = from_float<bf16>(e.value[0]); }

__device__ __forceinline__ Elements<8> load_elements(const float* p, Elements<8>) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    return {{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
}
__device__ __forceinline__ Elements<8> load_elements(const bf16* p, Elements<8>) {
    const uint4 word = *reinterpret_cast<const uint4*>(p);
    const unsigned lanes[4] = {word.x, word.y, word.z, word.w};
    Elements<8> e;
    // Little-endian: the lower half of each 32-bit lane is the earlier element.
    for (int k = 0; k < 4; ++k) {
        e.value[2 * k] = __uint_as_float(lanes[k] << 16);
        e.value[2 * k + 1] = __uint_as_float(lanes[k] & 0xffff0000u);
    }
    return e;
}
__device__ __forceinline__ void store_elements(float* p, const Elements<8>& e) {
    reinterpret_cast<float4*>(p)[0] = make_float4(e.value[0], e.value[1], e.value[2], e.value[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(e.value[4], e.value[5], e.value[6], e.value[7]);
}
__device__ __forceinline__ void store_elements(bf16* p, const Elements<8>& e) {
    unsigned lanes[4];
    // cvt.rn.bf16x2.f32 puts its first source in the upper half: the later element.
    for (int k = 0; k < 4; ++k) asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(lanes[k]) : "f"(e.value[2 * k + 1]), "f"(e.value[2 * k]));
    *reinterpret_cast<uint4*>(p) = make_uint4(lanes[0], lanes[1], lanes[2], lanes[3]);
}

// Loads N elements starting at p: `load<N>(p)`.
template <int N, typename Element> __device__ __forceinline__ Elements<N> load(const Element* p) {
    return load_elements(p, Elements<N>{});
}
