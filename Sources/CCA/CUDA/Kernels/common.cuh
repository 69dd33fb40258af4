// common.cuh: the element types every kernel is built for, and their conversions to and from float.
//
// Each .cu file is compiled once per storage type with -DELEMENT=float or -DELEMENT=bf16, so a kernel
// is written once against `T` and always computes in float. bfloat16 is a plain 16-bit struct converted
// with PTX `cvt` (round to nearest even), so that no CUDA header is needed: NVRTC compiles these files
// with nothing on the include path, which keeps the CI compile check independent of where headers live.
#pragma once

struct bf16 {
    unsigned short bits;
};

#ifndef ELEMENT
#define ELEMENT bf16
#endif
typedef ELEMENT T;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __uint_as_float(static_cast<unsigned>(x.bits) << 16); }

template <typename Element> __device__ __forceinline__ Element from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) {
    bf16 result;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(result.bits) : "f"(x));
    return result;
}

// -infinity, written as bits because NVRTC without headers has no INFINITY macro.
__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }
