// mma.cuh: bfloat16 tensor-core helpers (sm_80 and later): mma.sync m16n8k16 with float accumulators,
// ldmatrix from shared memory, packing two floats into a bf16 pair, and cp.async tile loads. Include
// common.cuh first.
#pragma once

// D += A . B for one 16x8x16 tile; A is 16x16 row-major, B 16x8 column-major, both as packed bf16 pairs.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair, `low` in the low half (the lower column index of a fragment).
__device__ __forceinline__ unsigned pack_bf16(float low, float high) {
    unsigned result;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(result) : "f"(high), "f"(low));
    return result;
}

// The two halves of a bf16 pair as floats.
__device__ __forceinline__ float low_bf16(unsigned pair) { return __uint_as_float(pair << 16); }
__device__ __forceinline__ float high_bf16(unsigned pair) { return __uint_as_float(pair & 0xffff0000u); }

__device__ __forceinline__ unsigned shared_address(const void* pointer) {
    return static_cast<unsigned>(__cvta_generic_to_shared(pointer));
}

// Four 8x8 bf16 matrices from shared memory; lanes 8j..8j+7 give the row addresses of matrix j, and
// register j receives, in lane t, row t/4, columns 2(t%4) and 2(t%4)+1 of matrix j (transposed: column t/4,
// rows 2(t%4) and 2(t%4)+1).
__device__ __forceinline__ void load_matrices(unsigned (&r)[4], const unsigned short* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)));
}
__device__ __forceinline__ void load_matrices_transposed(unsigned (&r)[4], const unsigned short* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)));
}

// Starts copying, with the block's THREADS threads, `rows` rows of WIDTH bf16 values into a shared tile
// (row stride STRIDE, PADDED columns), with zeros for missing rows (row_pointer returns nullptr) and for the padding columns. Rows that are
// 16-byte multiples go through cp.async (complete after cp.async.wait_group); others are stored directly.
template <int WIDTH, int PADDED, int STRIDE, int THREADS, typename RowPointer>
__device__ __forceinline__ void load_tile(unsigned short* tile, int rows, const bf16* any_row, RowPointer row_pointer) {
    if constexpr (WIDTH % 8 == 0) {
        constexpr int CHUNKS = PADDED / 8;
        for (int index = threadIdx.x; index < rows * CHUNKS; index += THREADS) {
            const int row = index / CHUNKS, chunk = index % CHUNKS;
            const bf16* source = row_pointer(row);
            const bool inside = source != nullptr && chunk * 8 < WIDTH;
            // A source size of 0 makes cp.async write zeros; the address must still be a valid one.
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                         :: "r"(shared_address(tile + row * STRIDE + chunk * 8)),
                            "l"(inside ? source + chunk * 8 : any_row), "r"(inside ? 16 : 0));
        }
    } else {
        for (int index = threadIdx.x; index < rows * PADDED; index += THREADS) {
            const int row = index / PADDED, column = index % PADDED;
            const bf16* source = row_pointer(row);
            tile[row * STRIDE + column] = source != nullptr && column < WIDTH ? source[column].bits : 0;
        }
    }
}

__device__ __forceinline__ void commit_loads() { asm volatile("cp.async.commit_group;"); }
template <int PENDING> __device__ __forceinline__ void wait_loads() { asm volatile("cp.async.wait_group %0;" :: "n"(PENDING)); }
