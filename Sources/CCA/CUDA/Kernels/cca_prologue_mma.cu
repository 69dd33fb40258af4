// cca_prologue_mma.cu: CCA steps 4-8 for bfloat16 with both convolutions, conv B on the tensor cores.
//
// Computes what cca_prologue.cu computes, per row t and latent head: conv A (depthwise, kernel 2), conv B
// (one d x d matrix per tap and head; two zero rows of padding before the sequence), the QK-mean of the
// pre-convolution latents, the L2 normalisation to sqrt(d), the key temperature and RoPE. Conv B is the
// product of the rows [mixed(t - 1) | mixed(t)] (K = 2d) with the head's two taps stacked as
// [out][tap * d + in], done with mma.sync m16n8k16 (bf16 operands, float accumulators).
//
// Tiling: grid (blocks per head, Hq + Hkv, B), 8 warps. A block copies its head's stacked taps into shared
// memory once, then loops over tiles of 128 rows (tile blockIdx.x, then += gridDim.x). Per tile the block
// computes conv A at the 129 positions t0 - 1 ... t0 + 127 into shared memory (bf16, 16-byte vectors);
// each warp multiplies its 16 rows by the taps (ldmatrix for both operands; rows padded by 16 bytes so
// that ldmatrix hits 32 distinct banks) and finishes them in registers: a thread holds rows g and g + 8
// (g = lane / 4) at columns 8n + 2 (lane % 4) + {0, 1}, so a row's sum of squares is the thread's sum and
// two shuffles, and the RoPE partner of column c < ROTARY_DIM / 2, column c + ROTARY_DIM / 2, lies in the
// same thread. Compile-time constants: HEAD_DIM and ROTARY_DIM, both multiples of 16, HEAD_DIM <= 128.
#include "common.cuh"
#include "mma.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
#ifndef ROTARY_DIM
#define ROTARY_DIM 64
#endif

constexpr int D = HEAD_DIM, HALF = ROTARY_DIM / 2;
constexpr int ROWS = 128, THREADS = 256, WARPS = THREADS / 32;
constexpr int K = 2 * D, N_TILES = D / 8, VECTORS = D / 8;  // VECTORS: 8-channel (16-byte) pieces of a row
// Shared-memory row strides in bf16 elements, 16 bytes of padding each.
constexpr int TAP_STRIDE = K + 8, MIXED_STRIDE = D + 8;
static_assert(D % 16 == 0 && D <= 128 && ROTARY_DIM % 16 == 0 && ROTARY_DIM <= D, "unsupported head or rotary dim");
static_assert(ROWS == 16 * WARPS && THREADS % VECTORS == 0, "one warp per 16 rows");
// Conv A covers ROWS + 1 positions, THREADS / VECTORS of them per pass.
constexpr int CONV_A_STEP = THREADS / VECTORS, CONV_A_PASSES = (ROWS + CONV_A_STEP) / CONV_A_STEP;

// torch.finfo(float32).eps, the clamp of the reference QK norm.
constexpr float L2_EPSILON = 1.1920928955078125e-7f;
constexpr double TWO_PI = 6.283185307179586, INV_TWO_PI = 0.15915494309189535;

extern "C" __global__ void __launch_bounds__(THREADS, 2) cca_prologue_mma(
    const bf16* __restrict__ latents,        // [B*S, latent_stride]: q0 ; k0 before the convolutions in the first ct columns
    const float* __restrict__ conv_a_weight, // [ct, 2], tap 0 multiplies the older row
    const float* __restrict__ conv_a_bias,   // [ct]
    const bf16* __restrict__ conv_b_weight,  // [Hq + Hkv, d, 2d] as (head, out, tap * d + in)
    const float* __restrict__ conv_b_bias,   // [ct]
    const float* __restrict__ key_scale,     // [Hkv]: temp, or exp(temp), per key head
    const double* __restrict__ inv_freq,     // [ROTARY_DIM / 2]
    bf16* __restrict__ q,                    // [B*S, Hq, d]
    bf16* __restrict__ k,                    // [B*S, Hkv, d]
    int latent_stride, int seq_len, int q_heads, int kv_heads, int qk_mean)
{
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short* taps = shared;                       // [D][TAP_STRIDE]
    unsigned short* mixed = shared + D * TAP_STRIDE;     // [ROWS + 1][MIXED_STRIDE]: conv A at positions t0 - 1 + a

    const int head = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const long long row_base = static_cast<long long>(blockIdx.z) * seq_len;
    const int tiles = (seq_len + ROWS - 1) / ROWS;

    // The head's small parameters, read from shared memory where used: the barriers in the tile loop keep
    // the compiler from hoisting them into registers for the whole kernel.
    __shared__ float a_older[D], a_newer[D], a_bias[D], b_bias[D];
    __shared__ double frequencies[HALF];

    const uint4* head_taps = reinterpret_cast<const uint4*>(conv_b_weight + static_cast<long long>(head) * D * K);
    for (int i = threadIdx.x; i < D * K / 8; i += THREADS)
        *reinterpret_cast<uint4*>(taps + i / (K / 8) * TAP_STRIDE + i % (K / 8) * 8) = head_taps[i];
    for (int i = threadIdx.x; i < D; i += THREADS) {
        a_older[i] = conv_a_weight[2 * (head * D + i)];
        a_newer[i] = conv_a_weight[2 * (head * D + i) + 1];
        a_bias[i] = conv_a_bias[head * D + i];
        b_bias[i] = conv_b_bias[head * D + i];
        if (i < HALF) frequencies[i] = inv_freq[i];
    }

    // Conv A: this thread always handles the same 8 channels, at every CONV_A_STEP-th position from first_position.
    const int vector = threadIdx.x % VECTORS, channel0 = head * D + vector * 8, c0 = vector * 8;
    const int first_position = threadIdx.x / VECTORS;
    auto latent_vector = [&](int t) {
        return t >= 0 && t < seq_len ? *reinterpret_cast<const uint4*>(latents + (row_base + t) * latent_stride + channel0)
                                     : make_uint4(0, 0, 0, 0);
    };

    // The epilogue's fixed values. QK-mean: query head h adds (q0[h] + k0[h/g]) / 2, key head j adds
    // (mean of q0 over its group + k0[j]) / 2: the sum over `mean_sources` latent heads, the last of them
    // k0, the others from `mean_first` on, weighted `mean_weight`.
    const int g = lane / 4, column0 = 2 * (lane % 4);
    const bool is_key = head >= q_heads;
    const int group = q_heads / kv_heads, key_head = is_key ? head - q_heads : head / group;
    const int mean_first = is_key ? key_head * group : head, mean_sources = qk_mean ? (is_key ? group : 1) + 1 : 0;
    const float mean_weight = 0.5f / (is_key ? group : 1);
    const float temperature = is_key ? key_scale[key_head] : 1.f;
    bf16* const destination = is_key ? k + key_head * D : q + head * D;
    const int destination_stride = (is_key ? kv_heads : q_heads) * D;

    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int t0 = tile * ROWS;
        __syncthreads();  // the previous tile's products have read `mixed`; also orders the taps' copy
        // All of this thread's latent loads first, then the arithmetic: the loads are in flight together.
        uint4 older[CONV_A_PASSES], newer[CONV_A_PASSES];
#pragma unroll
        for (int i = 0; i < CONV_A_PASSES; ++i) {
            const int position = t0 - 1 + first_position + i * CONV_A_STEP;
            older[i] = latent_vector(position - 1);
            newer[i] = latent_vector(position);
        }
#pragma unroll
        for (int i = 0; i < CONV_A_PASSES; ++i) {
            const int a = first_position + i * CONV_A_STEP;
            if (a > ROWS) break;
            const unsigned older_pairs[4] = {older[i].x, older[i].y, older[i].z, older[i].w};
            const unsigned newer_pairs[4] = {newer[i].x, newer[i].y, newer[i].z, newer[i].w};
            unsigned out[4];
#pragma unroll
            for (int p = 0; p < 4; ++p) {
                const int j = 2 * p;
                out[p] = pack_bf16(a_older[c0 + j] * low_bf16(older_pairs[p]) + a_newer[c0 + j] * low_bf16(newer_pairs[p]) + a_bias[c0 + j],
                                   a_older[c0 + j + 1] * high_bf16(older_pairs[p]) + a_newer[c0 + j + 1] * high_bf16(newer_pairs[p])
                                       + a_bias[c0 + j + 1]);
            }
            *reinterpret_cast<uint4*>(mixed + a * MIXED_STRIDE + vector * 8) = make_uint4(out[0], out[1], out[2], out[3]);
        }
        __syncthreads();

        // Conv B for rows r0 .. r0 + 15: tap 0 reads mixed row r (position t - 1), tap 1 row r + 1.
        const int r0 = warp * 16, matrix = lane / 8;
        float acc[N_TILES][4];
#pragma unroll
        for (int n = 0; n < N_TILES; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < K; kk += 16) {
            unsigned a[4];
            load_matrices(a, mixed + (r0 + (matrix & 1) * 8 + lane % 8 + kk / D) * MIXED_STRIDE + kk % D + (matrix >> 1) * 8);
#pragma unroll
            for (int n = 0; n < N_TILES; n += 2) {
                unsigned b[4];
                load_matrices(b, taps + ((n + (matrix >> 1)) * 8 + lane % 8) * TAP_STRIDE + kk + (matrix & 1) * 8);
                mma_bf16(acc[n], a, b[0], b[1]);
                mma_bf16(acc[n + 1], a, b[2], b[3]);
            }
        }

        // Finish rows g (acc[n][0..1]) and g + 8 (acc[n][2..3]) of the warp's 16 in place: acc[n][c + j] is
        // column 8n + column0 + j of the row, with c = 0 or 2.
#pragma unroll
        for (int c = 0; c < 4; c += 2) {
            const int t = t0 + r0 + g + 4 * c;
            const bool inside = t < seq_len;
            const bf16* latent_row = latents + (row_base + (inside ? t : 0)) * latent_stride + column0;
#pragma unroll
            for (int n = 0; n < N_TILES; ++n) {
                acc[n][c] += b_bias[8 * n + column0];
                acc[n][c + 1] += b_bias[8 * n + column0 + 1];
            }
            for (int m = 0; m < mean_sources; ++m) {
                const bool last = m == mean_sources - 1;
                const int source_head = last ? q_heads + key_head : mean_first + m;
                const float weight = last ? 0.5f : mean_weight;
                unsigned pairs[N_TILES];
#pragma unroll
                for (int n = 0; n < N_TILES; ++n)
                    pairs[n] = *reinterpret_cast<const unsigned*>(latent_row + source_head * D + 8 * n);
#pragma unroll
                for (int n = 0; n < N_TILES; ++n) {
                    acc[n][c] += weight * low_bf16(pairs[n]);
                    acc[n][c + 1] += weight * high_bf16(pairs[n]);
                }
            }
            float sum = 0.f;
#pragma unroll
            for (int n = 0; n < N_TILES; ++n) sum += acc[n][c] * acc[n][c] + acc[n][c + 1] * acc[n][c + 1];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float scale = sqrtf(static_cast<float>(D)) / fmaxf(sqrtf(sum), L2_EPSILON) * temperature;
#pragma unroll
            for (int n = 0; n < N_TILES; ++n) {
                acc[n][c] *= scale;
                acc[n][c + 1] *= scale;
            }
            // RoPE on the pairs (column, column + HALF): the angle t * inv_freq[column] in double, reduced to
            // [-pi, pi] before the float sine and cosine.
#pragma unroll
            for (int n = 0; n < HALF / 8; ++n) {
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const double angle = static_cast<double>(t) * frequencies[8 * n + column0 + j];
                    float sine, cosine;
                    __sincosf(static_cast<float>(fma(-rint(angle * INV_TWO_PI), TWO_PI, angle)), &sine, &cosine);
                    const float first = acc[n][c + j], second = acc[n + HALF / 8][c + j];
                    acc[n][c + j] = first * cosine - second * sine;
                    acc[n + HALF / 8][c + j] = second * cosine + first * sine;
                }
            }
            if (inside) {
                bf16* row = destination + (row_base + t) * destination_stride + column0;
#pragma unroll
                for (int n = 0; n < N_TILES; ++n) *reinterpret_cast<unsigned*>(row + 8 * n) = pack_bf16(acc[n][c], acc[n][c + 1]);
            }
        }
    }
}
