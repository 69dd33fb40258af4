// decode_cca_prologue.cu: CCA steps 3-8 for the new rows of a decode step (single tokens and prefill chunks
// of many sequences in one launch), each sequence continuing its own state, and the state's update.
//
// The R new rows are laid out chunk after chunk. Row r belongs to step sequence row_sequence[r] (its page
// table row), whose state slot is row_state[r]; it sits at position row_position[r] and is row row_offset[r]
// of its chunk. The rows a convolution needs before the chunk's first come from the slot's history: the two
// pre-convolution latent rows before the chunk (older first, zeros for a fresh sequence, as the forward pass
// pads), and the previous token's delayed value half (zeros for a fresh sequence).
//
// cca_decode_prologue: grid (R, Hq + Hkv), `parts` threads per channel of a head (blockDim = parts * d). Conv A
// at positions t - 1 and t from latents t - 2 .. t, conv B (one d x d matrix per tap and head, stored
// [tap][head][in][out] as cca_prologue.cu reads it; the block's threads split it into 4-channel columns by
// slices of the input channels, 4 * parts slices, so that a single-token step has its loads in flight together;
// shared memory (3 + 4 * parts) * d floats), the QK-mean, the L2 norm to sqrt(d) (summed in channel
// order by one thread, as cca_prologue.cu does, so both agree to the bit in float32), the key temperature
// and RoPE at the row's own position. Query heads write q [R, Hq, d]; key heads write their k, and the
// value-shifted v of the same KV head, straight into the paged cache (decode_attention.cu's layout), and
// when `dense_keys` and `dense_values` are given also there, [R, Hkv, d] (for the flash kernels of a step's prompts).
// cca_decode_history: one thread per (sequence, channel): the slot's new history is the last two latent rows
// of history + chunk, and its delayed value the chunk's last row's. It runs after the prologue, which reads
// the old history.
#include "cca_rows.cuh"

constexpr int PAGE = 64;  // tokens per cache page, as in decode_attention.cu

extern "C" __global__ void cca_decode_prologue(
    const T* __restrict__ projections,       // [R, stride]: [q0 | k0 | v_current | v_delayed]
    const float* __restrict__ history,       // [slots, 2, ct]
    const float* __restrict__ value_history, // [slots, ek / 2]
    const int* __restrict__ row_sequence, const int* __restrict__ row_state,
    const int* __restrict__ row_position, const int* __restrict__ row_offset,
    const int* __restrict__ page_table,      // [sequences, max_pages]
    const float* __restrict__ conv_a_weight, const float* __restrict__ conv_a_bias,
    const float* __restrict__ conv_b_weight, const float* __restrict__ conv_b_bias,
    const float* __restrict__ key_scale, const double* __restrict__ inv_freq,
    T* __restrict__ q,                       // [R, Hq, d]
    T* __restrict__ key_cache, T* __restrict__ value_cache,  // [pages, PAGE, Hkv, d]
    T* __restrict__ dense_keys, T* __restrict__ dense_values,  // [R, Hkv, d] or null
    int stride, int q_heads, int kv_heads, int head_dim, int rotary_dim, int convolutions, int qk_mean,
    int value_shift, int max_pages)
{
    const int d = head_dim, heads = q_heads + kv_heads, ct = heads * d, ek = kv_heads * d;
    const int part = threadIdx.x / d;
    const int r = blockIdx.x, head = blockIdx.y, o = threadIdx.x % d, channel = head * d + o;
    const int state = row_state[r], position = row_position[r], offset = row_offset[r];
    const T* row = projections + static_cast<long long>(r) * stride;

    extern __shared__ float shared[];
    float* mixed = shared;              // [2][d]: conv A at positions t - 1 and t
    float* values = shared + 2 * d;     // [d]: q or k before normalisation
    float* partials = shared + 3 * d;   // [slices][d]: conv B over each slice's input channels
    __shared__ float row_scale;

    // The latent `lag` rows before this one: from the chunk, or from the slot's history.
    auto latent = [&](int lag, int c) {
        if (offset >= lag) return to_float(projections[static_cast<long long>(r - lag) * stride + c]);
        return history[(static_cast<long long>(state) * 2 + 2 - (lag - offset)) * ct + c];
    };

    const float x0 = latent(0, channel);
    if (convolutions >= 1 && part == 0) {
        const float w0 = conv_a_weight[2 * channel], w1 = conv_a_weight[2 * channel + 1], bias = conv_a_bias[channel];
        const float x1 = latent(1, channel), x2 = latent(2, channel);
        mixed[o] = w0 * x2 + w1 * x1 + bias;
        mixed[d + o] = w0 * x1 + w1 * x0 + bias;
    }
    __syncthreads();

    float conv = x0;
    if (convolutions == 2) {
        // Each thread takes 4 adjacent output channels (one 16-byte load per tap and input channel, when d
        // allows) of a slice of the input channels: the block's loads of a head's two matrices are nearly all in
        // flight at once, which is what a single-token step, whose few blocks read 128 KB each, waits on.
        const int width = d % 4 == 0 ? 4 : 1, columns = d / width, slices = blockDim.x / columns;
        const int column = threadIdx.x % columns, slice = threadIdx.x / columns;
        const int per_slice = (d + slices - 1) / slices, begin = slice * per_slice, end = min(d, begin + per_slice);
        const float* tap0 = conv_b_weight + static_cast<long long>(head) * d * d + column * width;
        const float* tap1 = conv_b_weight + static_cast<long long>(heads + head) * d * d + column * width;
        float sums[4] = {0.f, 0.f, 0.f, 0.f};
        if (width == 4) {
#pragma unroll 4
            for (int i = begin; i < end; ++i) {
                const float4 w0 = *reinterpret_cast<const float4*>(tap0 + i * d), w1 = *reinterpret_cast<const float4*>(tap1 + i * d);
                const float m0 = mixed[i], m1 = mixed[d + i];
                sums[0] += w0.x * m0 + w1.x * m1; sums[1] += w0.y * m0 + w1.y * m1;
                sums[2] += w0.z * m0 + w1.z * m1; sums[3] += w0.w * m0 + w1.w * m1;
            }
        } else {
            for (int i = begin; i < end; ++i) sums[0] += tap0[i * d] * mixed[i] + tap1[i * d] * mixed[d + i];
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (j < width) partials[slice * d + column * width + j] = sums[j];
        }
        __syncthreads();
        conv = conv_b_bias[channel];
        for (int p = 0; p < slices; ++p) conv += partials[p * d + o];
    } else if (convolutions == 1) {
        conv = mixed[d + o];
    }

    const bool is_key = head >= q_heads;
    const int key_head = is_key ? head - q_heads : head / (q_heads / kv_heads);
    if (part == 0) values[o] = conv + (qk_mean ? qk_mean_term(row, head, o, q_heads, kv_heads, d) : 0.f);
    __syncthreads();
    if (threadIdx.x == 0) {
        float sum = 0.f;
#pragma unroll 16
        for (int c = 0; c < d; ++c) sum += values[c] * values[c];
        row_scale = sqrtf(static_cast<float>(d)) / fmaxf(sqrtf(sum), L2_EPSILON);
    }
    __syncthreads();
    if (part != 0) return;  // no barrier below

    const float temperature = is_key ? key_scale[key_head] : 1.f;
    const float x = rope_channel(values[o] * row_scale * temperature, values[rope_partner(o, rotary_dim)] * row_scale * temperature,
                                 o, rotary_dim, position, inv_freq);
    if (!is_key) {
        q[(static_cast<long long>(r) * q_heads + head) * d + o] = from_float<T>(x);
        return;
    }
    const long long page = page_table[static_cast<long long>(row_sequence[r]) * max_pages + position / PAGE];
    const long long slot = ((page * PAGE + position % PAGE) * kv_heads + key_head) * d + o;
    const long long dense = (static_cast<long long>(r) * kv_heads + key_head) * d + o;
    key_cache[slot] = from_float<T>(x);
    if (dense_keys) dense_keys[dense] = from_float<T>(x);
    // v channel c of ek: the current half from this row, the delayed half from the row before (or the state).
    const int c = key_head * d + o, value_half = ek / 2;
    T value = row[ct + c];
    if (value_shift && c >= value_half) {
        value = offset >= 1 ? projections[static_cast<long long>(r - 1) * stride + ct + c]
                            : from_float<T>(value_history[static_cast<long long>(state) * value_half + c - value_half]);
    }
    value_cache[slot] = value;
    if (dense_values) dense_values[dense] = value;
}

extern "C" __global__ void cca_decode_history(
    const T* __restrict__ projections,   // [R, stride]
    float* __restrict__ history,         // [slots, 2, ct]
    float* __restrict__ value_history,   // [slots, ek / 2]
    const int* __restrict__ sequence_state,    // [sequences]
    const int* __restrict__ sequence_last_row, // [sequences]: the row of each chunk's last token
    const int* __restrict__ sequence_rows,     // [sequences]: each chunk's length
    int sequences, int stride, int ct, int value_half)
{
    const long long width = ct + value_half, total = static_cast<long long>(sequences) * width;
    for (long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
         index += static_cast<long long>(gridDim.x) * blockDim.x) {
        const int b = static_cast<int>(index / width), c = static_cast<int>(index % width);
        const long long state = sequence_state[b], last = sequence_last_row[b];
        if (c < ct) {
            float* rows = history + state * 2 * ct;
            const float older = sequence_rows[b] >= 2 ? to_float(projections[(last - 1) * stride + c]) : rows[ct + c];
            rows[c] = older;
            rows[ct + c] = to_float(projections[last * stride + c]);
        } else {
            const int v = c - ct;
            value_history[state * value_half + v] = to_float(projections[last * stride + ct + value_half + v]);
        }
    }
}
