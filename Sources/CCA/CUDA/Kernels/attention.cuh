// attention.cuh: the head dims the attention kernels are built for, from -DHEAD_DIM_QK=<dk>
// -DHEAD_DIM_V=<dv> (default 128, and dv = dk), and the constants derived from them.
#pragma once

#ifndef HEAD_DIM_QK
#define HEAD_DIM_QK 128
#endif
#ifndef HEAD_DIM_V
#define HEAD_DIM_V HEAD_DIM_QK
#endif

constexpr int DK = HEAD_DIM_QK, DV = HEAD_DIM_V;
// The tensor-core kernels' operand widths, zero-padded to whole 16-column steps.
constexpr int DK_PADDED = (DK + 15) / 16 * 16, DV_PADDED = (DV + 15) / 16 * 16;
static_assert(DK_PADDED <= 256 && DV_PADDED <= 256, "head dims above 256 are not supported");
constexpr float LOG2E = 1.4426950408889634f;
