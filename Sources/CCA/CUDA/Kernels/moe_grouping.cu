// moe_grouping.cu: the rows of a mixture-of-experts layer grouped by their expert, on the device, so that
// one grouped product serves every expert without a trip to the host.
//
// moe_group: one block of GROUP_THREADS threads; thread e < experts owns expert e. The expert ids
// (int32 [rows], -1 for a row that goes to no expert) are read in tiles through shared memory. Pass 1:
// each thread counts its expert's rows; thread 0 writes the prefix sums `offsets` [experts + 1] (expert e's
// rows are slots offsets[e] ..< offsets[e + 1]). Pass 2: each thread writes its rows' indices, in row
// order, into `order` [rows] at its slots. No atomics: the grouping is the same on every run.
#include "common.cuh"

constexpr int GROUP_THREADS = 256, GROUP_TILE = 2048;

extern "C" __global__ void __launch_bounds__(GROUP_THREADS) moe_group(const int* __restrict__ expert, int rows, int experts,
                                                                     int* __restrict__ offsets, int* __restrict__ order)
{
    __shared__ int tile[GROUP_TILE];
    __shared__ int starts[GROUP_THREADS + 1];
    const int mine = threadIdx.x;
    int count = 0;
    for (int pass = 0; pass < 2; ++pass) {
        int slot = pass == 1 && mine < experts ? starts[mine] : 0;
        for (int begin = 0; begin < rows; begin += GROUP_TILE) {
            const int size = rows - begin < GROUP_TILE ? rows - begin : GROUP_TILE;
            __syncthreads();
            for (int i = threadIdx.x; i < size; i += GROUP_THREADS) tile[i] = expert[begin + i];
            __syncthreads();
            if (mine < experts) {
                for (int i = 0; i < size; ++i) {
                    if (tile[i] != mine) continue;
                    if (pass == 0) ++count; else order[slot++] = begin + i;
                }
            }
        }
        if (pass == 0) {
            if (mine < experts) starts[mine + 1] = count;
            __syncthreads();
            if (threadIdx.x == 0) {
                starts[0] = 0;
                for (int e = 0; e < experts; ++e) starts[e + 1] += starts[e];
                for (int e = 0; e <= experts; ++e) offsets[e] = starts[e];
            }
            __syncthreads();
        }
    }
}
