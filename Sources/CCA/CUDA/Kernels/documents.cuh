// documents.cuh: packed documents in the attention kernels. `positions` (int32, one per token of a row,
// already offset to the row's sequence) holds each token's position within its document, p(t) = t - start(t);
// null means one document per row. Key s is visible from position t when start(t) <= s <= t. As start is
// non-decreasing along a row, a tile of rows sees no key below start(first row), and a tile of keys is seen
// by no row at or after the end of its last key's document.
#pragma once

// The first position of t's document (0 without packing).
__device__ __forceinline__ int document_start(const int* __restrict__ positions, int t) {
    return positions == nullptr ? 0 : t - positions[t];
}

// The first position after the document holding `key` (seq_len for the row's last document): a binary
// search for the first t > key whose document starts after `key`.
__device__ __forceinline__ int document_end(const int* __restrict__ positions, int key, int seq_len) {
    if (positions == nullptr) return seq_len;
    int low = key + 1, high = seq_len;
    while (low < high) {
        const int middle = low + (high - low) / 2;
        if (middle - positions[middle] > key) high = middle; else low = middle + 1;
    }
    return low;
}

// The keys a block of packed query rows row0 ..< row0 + rows (packed row r is position r / group) can see,
// in whole tiles of TILE_KEYS: from the tile holding the first row's document start to the last row's
// position (every key without causal masking). Producer and consumers of a pipelined kernel walk exactly
// these tiles: first_tile + n for n in 0 ..< tiles.
struct BlockKeys {
    int first_tile, tiles;
    int end;  // one past the last key any row of the block sees
};

template <int TILE_KEYS>
__device__ __forceinline__ BlockKeys block_keys(const int* __restrict__ positions, int row0, int rows, int packed_rows,
                                                int group, int seq_len, int causal) {
    const int end = causal ? (min(row0 + rows, packed_rows) - 1) / group + 1 : seq_len;
    const int first_tile = document_start(positions, row0 / group) / TILE_KEYS;
    return {first_tile, (end + TILE_KEYS - 1) / TILE_KEYS - first_tile, end};
}
