// embedding.cu: the token embedding, a gather of rows of the table [vocab, E], and its backward pass, a
// scatter-add into the float32 gradient of the table: the GPU twin of Operations/Embedding.swift.
//
// One thread per element of x [rows, E], a flat grid-stride loop (consecutive threads, consecutive
// columns of one row: coalesced). Token ids are int32. The host checks every id against the vocabulary
// before upload (EmbeddingError); an id outside it here gives a zero row and adds nothing, so no read or
// write leaves the table. The backward pass adds with float atomics: rows of the same token meet in any
// order, so its sums may differ in the last bits from run to run.
#include "common.cuh"
#include "elementwise.cuh"

extern "C" __global__ void embedding_forward(const T* __restrict__ table, const int* __restrict__ tokens,
                                             T* __restrict__ x, long long rows, int width, int vocab)
{
    for_each_element(rows * width, [&](long long e) {
        const int token = tokens[e / width];
        const int c = static_cast<int>(e % width);
        x[e] = token >= 0 && token < vocab ? table[static_cast<long long>(token) * width + c] : from_float<T>(0.f);
    });
}

extern "C" __global__ void embedding_backward(const T* __restrict__ dx, const int* __restrict__ tokens,
                                              float* __restrict__ d_table, long long rows, int width, int vocab)
{
    for_each_element(rows * width, [&](long long e) {
        const int token = tokens[e / width];
        const int c = static_cast<int>(e % width);
        if (token >= 0 && token < vocab) atomicAdd(d_table + static_cast<long long>(token) * width + c, to_float(dx[e]));
    });
}
