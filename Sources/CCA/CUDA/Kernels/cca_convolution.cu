// cca_convolution.cu: the pieces of CCA's causal convolutions (Operations/CCAConvolution.swift) that the
// training path runs as kernels; conv B's products run on cuBLAS (CCAConvolutionKernel.swift).
//
// Shapes: latents [B*S, ct] (T, rows `latent_stride` apart: the first ct columns of the fused projection);
// conv A's output A [B * (S + convolutions - 1), ct] float32: S + 1 rows per sequence before conv B, S rows
// when conv A is the only convolution. A sequence's padded input P has `convolutions` zero rows before its
// latents (a fresh sequence: no history), and A[i] = w0 * P[i] + w1 * P[i + 1] + bias per channel.
//
// conv_a_forward: one thread per element of A, a flat grid-stride loop (consecutive threads, consecutive
//   channels: coalesced).
// conv_a_backward_input: one thread per element of d_latents [B*S, ct]: the conv A path
//   w1 * dA[t + convolutions - 1] + w0 * dA[t + convolutions] (the second while inside the sequence), or dA
//   itself with no convolution, plus the QK-mean path d_mean when given; written as T into a column range
//   of a wider matrix (`d_stride`), the fused projection's gradient.
// conv_a_weight_gradient: dW[c, tap] = sum over the rows i of A of dA[i, c] * P[i + tap, c], as 2 * ct
//   columns (column 2c + tap: the [ct, 1, 2] layout) through reduce_columns (reduce.cuh).
// Packed documents: `positions` (int32 [B*S] or null) holds each token's position within its document,
//   and a tap reading token t - k is zero when k > position(t), as if each document were its own sequence.
//   conv A's row i feeds token i - convolutions + 1 (its owner: the row is conv B's newer input there, or the
//   output itself with one convolution), so its older input is zero where the owner starts a document. conv B's
//   older input for a document's first token is conv A's output on zeros (its bias), not row i:
//   conv_b_older_rows makes those rows, and conv_b_divert_starts routes their gradient to conv A's bias.
// conv_b_taps: conv B's weight [ct, d, 2] (float32, interchange layout: row head * d + out, then in, then
//   tap) in the layout a reader wants, as T: element (tap, head, out, in) goes to tap * tap_stride +
//   head * head_stride + out * out_stride + in * in_stride. Made from the weight as it is at each use, so
//   that an optimizer updating the weight in place is seen. One thread per element in the weight's order
//   (coalesced reads; the writes scatter, but the weight is small).
// conv_b_merge_taps: two [ct, d] float32 matrices (the split layout, tap 0 first) back to [ct, d, 2],
//   added into the float32 gradient when `accumulate`; one thread per element.
#include "common.cuh"
#include "elementwise.cuh"
#include "reduce.cuh"

// Element c of row j of sequence b's padded input: zero for the `convolutions` rows before the sequence.
__device__ __forceinline__ float padded_latent(const T* latents, long long latent_stride, int b, int j, int c,
                                               int seq_len, int convolutions) {
    return j < convolutions ? 0.f : to_float(latents[(static_cast<long long>(b) * seq_len + j - convolutions) * latent_stride + c]);
}

// Input `tap` of conv A's row i of sequence b: the padded latent, zero for an older input (tap 0) that lies
// before the document of the row's owner.
__device__ __forceinline__ float conv_a_input(const T* latents, long long latent_stride, const int* positions, int b, int i,
                                              int tap, int c, int seq_len, int convolutions) {
    const int j = i + tap;
    if (tap == 0 && positions != nullptr && j >= convolutions
        && positions[static_cast<long long>(b) * seq_len + j - convolutions + 1] == 0) return 0.f;
    return padded_latent(latents, latent_stride, b, j, c, seq_len, convolutions);
}

extern "C" __global__ void conv_a_forward(
    const T* __restrict__ latents, long long latent_stride, const float* __restrict__ weight,
    const float* __restrict__ bias, float* __restrict__ out, const int* __restrict__ positions, int batch, int seq_len,
    int channels, int convolutions)
{
    const int rows_per_sequence = seq_len + convolutions - 1;
    for_each_element(static_cast<long long>(batch) * rows_per_sequence * channels, [&](long long e) {
        const int c = static_cast<int>(e % channels);
        const long long row = e / channels;
        const int b = static_cast<int>(row / rows_per_sequence), i = static_cast<int>(row % rows_per_sequence);
        const float older = conv_a_input(latents, latent_stride, positions, b, i, 0, c, seq_len, convolutions);
        const float newer = conv_a_input(latents, latent_stride, positions, b, i, 1, c, seq_len, convolutions);
        out[e] = weight[2 * c] * older + weight[2 * c + 1] * newer + bias[c];
    });
}

extern "C" __global__ void conv_a_backward_input(
    const float* __restrict__ d_a, const float* __restrict__ weight, const float* __restrict__ d_mean,
    T* __restrict__ d_latents, long long d_stride, const int* __restrict__ positions, int batch, int seq_len, int channels,
    int convolutions)
{
    const int rows_per_sequence = seq_len + (convolutions > 0 ? convolutions - 1 : 0);
    for_each_element(static_cast<long long>(batch) * seq_len * channels, [&](long long e) {
        const int c = static_cast<int>(e % channels);
        const long long row = e / channels;
        const int b = static_cast<int>(row / seq_len), t = static_cast<int>(row % seq_len);
        const long long base = static_cast<long long>(b) * rows_per_sequence;
        float gradient;
        if (convolutions == 0) {
            gradient = d_a[e];
        } else {
            // Latent t is the newer input (tap 1) of row t + convolutions - 1 and the older (tap 0) of the next,
            // unless that row's owner, token t + 1, starts a document.
            const int newer_of = t + convolutions - 1, older_of = t + convolutions;
            gradient = weight[2 * c + 1] * d_a[(base + newer_of) * channels + c];
            if (older_of < rows_per_sequence && (positions == nullptr || positions[row + 1] != 0)) {
                gradient += weight[2 * c] * d_a[(base + older_of) * channels + c];
            }
        }
        if (d_mean) gradient += d_mean[e];
        d_latents[row * d_stride + c] = from_float<T>(gradient);
    });
}

extern "C" __global__ void __launch_bounds__(REDUCE_THREADS) conv_a_weight_gradient(
    const float* __restrict__ d_a, const T* __restrict__ latents, long long latent_stride, const int* __restrict__ positions,
    int seq_len, int channels, int convolutions, long long rows, float* __restrict__ out, int accumulate)
{
    const int rows_per_sequence = seq_len + convolutions - 1;
    reduce_columns(rows, 2 * channels, [&](long long row, int column) {
        const int c = column / 2, tap = column % 2;
        const int b = static_cast<int>(row / rows_per_sequence), i = static_cast<int>(row % rows_per_sequence);
        return d_a[row * channels + c] * conv_a_input(latents, latent_stride, positions, b, i, tap, c, seq_len, convolutions);
    }, out, accumulate);
}

extern "C" __global__ void conv_b_taps(const float* __restrict__ weight, T* __restrict__ taps, long long rows, int head_dim,
                                       long long tap_stride, long long head_stride, int out_stride, int in_stride)
{
    for_each_element(rows * head_dim * 2, [&](long long e) {
        const int tap = static_cast<int>(e % 2), in = static_cast<int>(e / 2 % head_dim);
        const long long row = e / 2 / head_dim, head = row / head_dim;
        const int out = static_cast<int>(row % head_dim);
        taps[tap * tap_stride + head * head_stride + out * out_stride + in * in_stride] = from_float<T>(weight[e]);
    });
}

extern "C" __global__ void conv_b_merge_taps(const float* __restrict__ taps, float* __restrict__ weight, long long count,
                                             int accumulate)
{
    for_each_element(2 * count, [&](long long e) {
        const long long index = e / 2, tap = e % 2;
        const float value = taps[tap * count + index];
        weight[e] = accumulate ? weight[e] + value : value;
    });
}

// conv B's older inputs with packed documents: conv A's output `depthwise` [B * (S + 1), ct] with the row of
// each document's first token replaced by conv A's bias (its output on zeros). One thread per element.
extern "C" __global__ void conv_b_older_rows(const float* __restrict__ depthwise, const float* __restrict__ bias,
                                             const int* __restrict__ positions, float* __restrict__ older, int batch,
                                             int seq_len, int channels)
{
    for_each_element(static_cast<long long>(batch) * (seq_len + 1) * channels, [&](long long e) {
        const int c = static_cast<int>(e % channels);
        const long long row = e / channels;
        const int b = static_cast<int>(row / (seq_len + 1)), t = static_cast<int>(row % (seq_len + 1));
        const bool starts = t < seq_len && positions[static_cast<long long>(b) * seq_len + t] == 0;
        older[e] = starts ? bias[c] : depthwise[e];
    });
}

// The gradient of conv B's older inputs `d_older` (the layout of conv_b_older_rows) added into conv A's output
// gradient `d_depthwise`, except on documents' first tokens, whose older input was conv A's bias: those rows
// stay in d_older (for the bias's column sums) and every other row of d_older becomes 0. One thread per element.
extern "C" __global__ void conv_b_divert_starts(float* __restrict__ d_older, float* __restrict__ d_depthwise,
                                                const int* __restrict__ positions, int batch, int seq_len, int channels)
{
    for_each_element(static_cast<long long>(batch) * (seq_len + 1) * channels, [&](long long e) {
        const long long row = e / channels;
        const int b = static_cast<int>(row / (seq_len + 1)), t = static_cast<int>(row % (seq_len + 1));
        const bool starts = t < seq_len && positions[static_cast<long long>(b) * seq_len + t] == 0;
        if (starts) return;
        d_depthwise[e] += d_older[e];
        d_older[e] = 0.f;
    });
}
