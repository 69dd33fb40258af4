// wgmma.cuh: Hopper (sm_90a) helpers shared by the warpgroup attention kernels (attention_wgmma.cu,
// attention_backward_wgmma.cu): the 128-byte-swizzle tile layout that wgmma descriptors read, cp.async
// copies into it, the mbarriers that hand tiles from a producer warpgroup to the consumers, and the wgmma
// instructions for accumulators of 64 x 64 (32 floats a thread), 64 x 128 (64) and 64 x 192 (96), and the
// products and copies both kernels build from them.
//
// A tile of ROWS rows x 128 bf16 is two column halves of [ROWS][64 bf16]; the 16-byte chunk c of row r is
// stored at chunk c ^ (r % 8) of its half. Accumulators of an m64nN wgmma: element 4j + 2i + e of a thread
// in warp w of the warpgroup is row 16w + lane/4 + 8i, column 8j + 2 (lane % 4) + e; the elements of two
// adjacent 8-column tiles (j = 2kk, 2kk + 1), packed as bf16 pairs, are the A registers of the 16-deep
// step kk of a following wgmma.
#pragma once

__device__ __forceinline__ unsigned shared_address(const void* pointer) {
    return static_cast<unsigned>(__cvta_generic_to_shared(pointer));
}

// Byte offset, inside a tile of ROWS rows, of 16-byte chunk `chunk` (0..15) of row `row`.
template <int ROWS> __device__ __forceinline__ unsigned swizzled(int row, int chunk) {
    return (chunk / 8) * (ROWS * 128) + row * 128 + ((chunk % 8) ^ (row % 8)) * 16;
}

// Copies 16 bytes from global to shared memory, or writes 16 zeros when `source` is null (the address
// must still be a valid one: any_row).
__device__ __forceinline__ void copy_chunk(unsigned destination, const bf16* source, const bf16* any_row) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(destination), "l"(source != nullptr ? source : any_row), "r"(source != nullptr ? 16 : 0)
                 : "memory");
}

// The same for one float (0 when `source` is null).
__device__ __forceinline__ void copy_float(unsigned destination, const float* source, const float* any) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;"
                 :: "r"(destination), "l"(source != nullptr ? source : any), "r"(source != nullptr ? 4 : 0)
                 : "memory");
}

// A producer warpgroup's copies of `ROWS` rows of WIDTH (64 or 128) bf16 into a swizzled tile: thread t copies
// chunk t % CHUNKS of rows t / CHUNKS + (THREADS / CHUNKS) i, all of one swizzle phase; `source(row)` is the
// row's address or null (zeros).
template <int ROWS, int WIDTH, int THREADS, typename Source>
__device__ __forceinline__ void copy_rows(unsigned tile, const bf16* any_row, Source source) {
    constexpr int CHUNKS = WIDTH / 8;
    static_assert(THREADS % CHUNKS == 0 && (THREADS / CHUNKS) % 8 == 0, "a thread's rows share a swizzle phase");
    const int chunk = threadIdx.x % CHUNKS, first_row = threadIdx.x / CHUNKS;
    const unsigned offset = swizzled<ROWS>(first_row, chunk);
#pragma unroll 4
    for (int row = first_row; row < ROWS; row += THREADS / CHUNKS) {
        const bf16* row_start = source(row);
        copy_chunk(tile + offset + (row - first_row) * 128, row_start != nullptr ? row_start + chunk * 8 : nullptr, any_row);
    }
}

// The rows `first + row` of head `head` in a [B, S, heads, WIDTH] tensor, `sequence` (b * S) being the batch
// row's first position, as `copy_rows` takes them: the row's address, or null at and past `seq_len`.
template <int WIDTH>
__device__ __forceinline__ auto head_rows(const bf16* tensor, long long sequence, int first, int seq_len, int heads, int head) {
    return [=](int row) -> const bf16* {
        const int s = first + row;
        return s < seq_len ? tensor + ((sequence + s) * heads + head) * WIDTH : nullptr;
    };
}

// mbarriers (64-bit words in shared memory) that hand tiles between the producer and the consumers.
__device__ __forceinline__ void barrier_init(unsigned barrier, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(barrier), "r"(count) : "memory");
}
// One arrival, due when every cp.async this thread issued before it has landed (.noinc: the barrier's
// count already includes these arrivals).
__device__ __forceinline__ void barrier_arrive_on_loads(unsigned barrier) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" :: "r"(barrier) : "memory");
}
__device__ __forceinline__ void barrier_arrive(unsigned barrier) {
    asm volatile("{\n\t.reg .b64 state;\n\tmbarrier.arrive.shared::cta.b64 state, [%0];\n\t}" :: "r"(barrier) : "memory");
}
// Waits for the completion of the barrier's phase of parity `parity`.
__device__ __forceinline__ void barrier_wait(unsigned barrier, unsigned parity) {
    asm volatile("{\n\t.reg .pred done;\n\tWAIT:\n\t"
                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n\t"
                 "@!done bra WAIT;\n\t}" :: "r"(barrier), "r"(parity) : "memory");
}
// Thread 0 sets up the hand-over barriers of a STAGES-deep pipeline (full[stage]: the producer's
// `producer_threads` arrivals; empty[stage]: one arrival per consumer warp, 8) and the barrier of the tiles that
// stay resident; then the block waits for it.
template <int STAGES>
__device__ __forceinline__ void init_pipeline(unsigned full, unsigned empty, unsigned resident, int producer_threads) {
    if (threadIdx.x == 0) {
        for (int stage = 0; stage < STAGES; ++stage) {
            barrier_init(full + 8 * stage, producer_threads);
            barrier_init(empty + 8 * stage, 8);
        }
        barrier_init(resident, producer_threads);
    }
    __syncthreads();
}

// A consumer warp hands `stage` back to the producer: one arrival on empty[stage] once all its lanes are done.
__device__ __forceinline__ void release_stage(unsigned empty, int stage, int lane) {
    __syncwarp();
    if (lane == 0) barrier_arrive(empty + 8 * stage);
}

// Waits for a tile that the producer's cp.async wrote, and orders those writes before this thread's
// wgmma reads (the async proxy).
__device__ __forceinline__ void wait_for_tile(unsigned barrier, unsigned parity) {
    barrier_wait(barrier, parity);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// A wgmma shared-memory descriptor with 128-byte swizzle: start address, leading and stride byte offsets.
__device__ __forceinline__ unsigned long long descriptor(unsigned address, unsigned leading, unsigned stride) {
    return static_cast<unsigned long long>((address & 0x3ffff) >> 4) |
           static_cast<unsigned long long>(leading >> 4) << 16 |
           static_cast<unsigned long long>(stride >> 4) << 32 | 1ull << 62;
}

// The accumulator operands of an m64n64 (32) and an m64n128 (64) wgmma: "+f" to accumulate, "=f" to overwrite.
#define ACC8(m, a, i) m(a[i]), m(a[i + 1]), m(a[i + 2]), m(a[i + 3]), m(a[i + 4]), m(a[i + 5]), m(a[i + 6]), m(a[i + 7])
#define ACC32(m, a) ACC8(m, a, 0), ACC8(m, a, 8), ACC8(m, a, 16), ACC8(m, a, 24)
#define ACC64(m, a) ACC8(m, a, 0), ACC8(m, a, 8), ACC8(m, a, 16), ACC8(m, a, 24), \
                    ACC8(m, a, 32), ACC8(m, a, 40), ACC8(m, a, 48), ACC8(m, a, 56)
#define ACC96(m, a) ACC64(m, a), ACC8(m, a, 64), ACC8(m, a, 72), ACC8(m, a, 80), ACC8(m, a, 88)
#define ACC_LIST32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define ACC_LIST64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define ACC_LIST96 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95}"

// d = A . B (ACCUMULATE false) or d += A . B for a 64 x N x 16 step (N = 128 or 64, from d's size), A and
// B in shared memory, K-major unless A_MN_MAJOR / B_MN_MAJOR (A's rows, B's columns contiguous: the backward's
// dk = dZ^T q and dq = dZ K). Overwriting takes d as a pure output, so that its old values need not stay alive.
template <bool ACCUMULATE, bool A_MN_MAJOR = false, bool B_MN_MAJOR = false>
__device__ __forceinline__ void wgmma_shared(float (&d)[64], unsigned long long a, unsigned long long b) {
    if constexpr (ACCUMULATE) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " ACC_LIST64 ", %64, %65, 1, 1, 1, %66, %67;"
                     : ACC64("+f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " ACC_LIST64 ", %64, %65, 0, 1, 1, %66, %67;"
                     : ACC64("=f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    }
}
template <bool ACCUMULATE, bool A_MN_MAJOR = false, bool B_MN_MAJOR = false>
__device__ __forceinline__ void wgmma_shared(float (&d)[32], unsigned long long a, unsigned long long b) {
    if constexpr (ACCUMULATE) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ACC_LIST32 ", %32, %33, 1, 1, 1, %34, %35;"
                     : ACC32("+f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ACC_LIST32 ", %32, %33, 0, 1, 1, %34, %35;"
                     : ACC32("=f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    }
}
// The same for N = 192 (the forward's key tiles at head dim 64): S = Q K^T of 192 keys.
template <bool ACCUMULATE, bool A_MN_MAJOR = false, bool B_MN_MAJOR = false>
__device__ __forceinline__ void wgmma_shared(float (&d)[96], unsigned long long a, unsigned long long b) {
    if constexpr (ACCUMULATE) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n192k16.f32.bf16.bf16 " ACC_LIST96 ", %96, %97, 1, 1, 1, %98, %99;"
                     : ACC96("+f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n192k16.f32.bf16.bf16 " ACC_LIST96 ", %96, %97, 0, 1, 1, %98, %99;"
                     : ACC96("=f", d) : "l"(a), "l"(b), "n"(A_MN_MAJOR ? 1 : 0), "n"(B_MN_MAJOR ? 1 : 0));
    }
}
// d += A . B for a 64 x N x 16 step (N = 128 or 64, from d's size), A as four bf16x2 registers per thread,
// B N-major in shared memory.
__device__ __forceinline__ void wgmma_registers(float (&d)[64], const unsigned (&a)[4], unsigned long long b) {
    asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %69, 0;\n\t"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " ACC_LIST64
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}"
                 : ACC64("+f", d) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
__device__ __forceinline__ void wgmma_registers(float (&d)[32], const unsigned (&a)[4], unsigned long long b) {
    asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %37, 0;\n\t"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " ACC_LIST32
                 ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}"
                 : ACC32("+f", d) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Waits until at most PENDING of this warpgroup's wgmma groups are in flight.
template <int PENDING> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(PENDING) : "memory");
}
// Pins accumulators after a wait, so that no read of them moves above it.
template <int N> __device__ __forceinline__ void pin(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i]) :: "memory");
}

// S (64 x B_ROWS) = A . B^T over WIDTH channels: A the warpgroup's 64 rows at `a` of a tile of A_ROWS rows, B a
// tile of B_ROWS rows, both K-major; 16 channels per step, steps 4-7 (WIDTH = 128) in the second column half.
template <int A_ROWS, int B_ROWS, int WIDTH>
__device__ __forceinline__ void scores(float (&s)[B_ROWS / 2], unsigned a, unsigned b) {
    // The resident rows' descriptors are the same for every tile: opaque to the compiler, they are formed again
    // each time (a few integer operations) rather than kept for the whole loop in 16 registers, which spills.
    asm volatile("" : "+r"(a));
    wgmma_shared<false>(s, descriptor(a, 16, 1024), descriptor(b, 16, 1024));
#pragma unroll
    for (int kk = 1; kk < WIDTH / 16; ++kk) {
        wgmma_shared<true>(s, descriptor(a + (kk / 4) * A_ROWS * 128 + (kk % 4) * 32, 16, 1024),
                           descriptor(b + (kk / 4) * B_ROWS * 128 + (kk % 4) * 32, 16, 1024));
    }
}

// acc (64 x 2N) += A . B: A the packed 64 x B_ROWS registers, B a tile of B_ROWS rows N-major (16 rows, 2048
// bytes, per step; the two column halves of a 128-wide tile B_ROWS * 128 bytes apart).
template <int B_ROWS, int N>
__device__ __forceinline__ void accumulate(float (&acc)[N], const unsigned (&a)[B_ROWS / 16][4], unsigned b) {
#pragma unroll
    for (int kk = 0; kk < B_ROWS / 16; ++kk) wgmma_registers(acc, a[kk], descriptor(b + kk * 2048, B_ROWS * 128, 1024));
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Two floats as a bf16 pair, `low` in the low half (the lower column index of a fragment).
__device__ __forceinline__ unsigned pack_bf16(float low, float high) {
    unsigned result;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(result) : "f"(high), "f"(low));
    return result;
}

// The accumulators of an m64nN product (COUNT = N / 2 floats a thread) as the A registers of the N / 16
// steps of a following wgmma.
template <int STEPS, int COUNT>
__device__ __forceinline__ void pack_fragments(unsigned (&a)[STEPS][4], const float (&d)[COUNT]) {
    static_assert(COUNT == 8 * STEPS, "two 8-column tiles (8 floats a thread) per 16-deep step");
#pragma unroll
    for (int kk = 0; kk < STEPS; ++kk) {
#pragma unroll
        for (int r = 0; r < 4; ++r) a[kk][r] = pack_bf16(d[8 * kk + 2 * r], d[8 * kk + 2 * r + 1]);
    }
}

// Stores row i of this thread's two of a 64 x 2N accumulator, times `factor`, as bf16 at `row` (its first
// channel): element 4j + 2i + e is channel 8j + 2 (lane % 4) + e.
template <int N>
__device__ __forceinline__ void store_row(const float (&acc)[N], int i, bf16* row, float factor, int lane) {
    unsigned* destination = reinterpret_cast<unsigned*>(row);
#pragma unroll
    for (int j = 0; j < N / 4; ++j) {
        destination[4 * j + lane % 4] = pack_bf16(acc[4 * j + 2 * i] * factor, acc[4 * j + 2 * i + 1] * factor);
    }
}
