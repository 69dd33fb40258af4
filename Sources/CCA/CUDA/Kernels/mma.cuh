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

// Starts copying 16 bytes from global to shared memory (complete after cp.async.wait_group), or zeros when
// `inside` is false: a source size of 0 makes cp.async write zeros, but `source` must still be a valid address.
__device__ __forceinline__ void copy_async_16(unsigned short* target, const void* source, bool inside) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(shared_address(target)), "l"(source), "r"(inside ? 16 : 0));
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
            copy_async_16(tile + row * STRIDE + chunk * 8, inside ? source + chunk * 8 : any_row, inside);
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

// Warp-level products on 16-row strips, the building blocks of the attention kernels (`lane` = thread in
// the warp). Accumulators are m16n8 tiles: acc[n / 8][e] holds row lane/4 + 8 (e / 2), column
// n + 2 (lane % 4) + e % 2 of the warp's 16 x N result.

// acc (16 x N) += A (16 x K: rows a_row0 .. a_row0 + 15 of a row-major shared tile) . B^T (B: N rows x K,
// row-major shared tile; both K-major, so no transposing loads).
template <int K, int N>
__device__ __forceinline__ void warp_mma_abt(float (&acc)[N / 8][4], const unsigned short* a, int a_stride,
                                             const unsigned short* b, int b_stride, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
        unsigned fragment[4];
        load_matrices(fragment, a + (lane % 8 + (lane / 8) % 2 * 8) * a_stride + kk * 16 + lane / 16 * 8);
#pragma unroll
        for (int np = 0; np < N / 16; ++np) {
            unsigned f[4];
            load_matrices(f, b + (np * 16 + lane % 8 + lane / 16 * 8) * b_stride + kk * 16 + (lane / 8) % 2 * 8);
            mma_bf16(acc[2 * np], fragment, f[0], f[1]);
            mma_bf16(acc[2 * np + 1], fragment, f[2], f[3]);
        }
    }
}

// The A fragments of a 16 x K strip of a row-major shared tile (rows a .. a + 15), kept in registers.
template <int K>
__device__ __forceinline__ void warp_load_fragments(unsigned (&fragments)[K / 16][4], const unsigned short* a, int a_stride,
                                                    int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
        load_matrices(fragments[kk], a + (lane % 8 + (lane / 8) % 2 * 8) * a_stride + kk * 16 + lane / 16 * 8);
    }
}

// acc (16 x N) += A (fragments from warp_load_fragments) . B^T (B: N rows x K, row-major shared tile).
template <int K, int N>
__device__ __forceinline__ void warp_mma_fragments_bt(float (&acc)[N / 8][4], const unsigned (&a)[K / 16][4],
                                                      const unsigned short* b, int b_stride, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < N / 16; ++np) {
            unsigned f[4];
            load_matrices(f, b + (np * 16 + lane % 8 + lane / 16 * 8) * b_stride + kk * 16 + (lane / 8) % 2 * 8);
            mma_bf16(acc[2 * np], a[kk], f[0], f[1]);
            mma_bf16(acc[2 * np + 1], a[kk], f[2], f[3]);
        }
    }
}

// acc (16 x N) += P (16 x K, held as the m16n8 accumulators of a previous product: the accumulators of
// column tiles 2kk and 2kk+1 are the A fragment of one 16-wide step) . B (K rows x N, row-major shared
// tile, read with ldmatrix.trans).
template <int K, int N>
__device__ __forceinline__ void warp_mma_accumulators_b(float (&acc)[N / 8][4], const float (&p)[K / 8][4],
                                                        const unsigned short* b, int b_stride, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
        const unsigned a[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]), pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                               pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]), pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < N / 16; ++dp) {
            unsigned f[4];
            load_matrices_transposed(f, b + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * b_stride + dp * 16 + lane / 16 * 8);
            mma_bf16(acc[2 * dp], a, f[0], f[1]);
            mma_bf16(acc[2 * dp + 1], a, f[2], f[3]);
        }
    }
}

// Stores the warp's m16n8 accumulator strip (16 x N) to two global rows: row lane/4 to rows[0] and row
// lane/4 + 8 to rows[1] (null skips it), each times its scale, the first WIDTH columns only.
template <int N, int WIDTH>
__device__ __forceinline__ void store_accumulators(const float (&acc)[N / 8][4], bf16* const (&rows)[2],
                                                   const float (&scales)[2], int lane) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (rows[i] == nullptr) continue;
#pragma unroll
        for (int dt = 0; dt < N / 8; ++dt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int column = dt * 8 + 2 * (lane % 4) + e;
                if (column < WIDTH) rows[i][column] = from_float<bf16>(acc[dt][2 * i + e] * scales[i]);
            }
        }
    }
}
