/// An attention layer that can continue sequences token by token (or chunk by chunk) from a decode state.
///
/// Running a sequence through `decode` in any chunking gives the same outputs as one `forward` over the
/// whole sequence (to float32 rounding): each state carries the KV cache and whatever else the layer
/// needs from earlier tokens.
public protocol DecodingAttention: AttentionLayer {
    associatedtype DecodeState: DecodeStateMemory
    /// A fresh state for a sequence of at most `capacity` tokens; its cache is allocated now.
    func makeDecodeState(capacity: Int) -> DecodeState
    /// Continues each sequence with its chunk `[S_i, E]` (lengths may differ, or be 0) and returns the
    /// outputs `[S_i, E]`, advancing the states.
    func decode(_ chunks: [Tensor], states: inout [DecodeState]) throws -> [Tensor]
}

/// The memory a decode state holds.
public protocol DecodeStateMemory: Sendable {
    /// Tokens seen so far.
    var length: Int { get }
    /// The KV cache (allocated for the whole capacity).
    var cache: KVCache { get }
    /// Bytes of the fixed per-sequence state besides the cache (CCA's convolution and value-shift state).
    var fixedStateBytes: Int { get }
}

extension DecodeStateMemory {
    /// Every byte the state holds: cache plus fixed state.
    public var bytes: Int { cache.bytes + fixedStateBytes }
}

extension DecodingAttention {
    /// Checks that there is one `[S_i, E]` chunk per state and that every chunk fits its cache.
    func validate(_ chunks: [Tensor], _ states: [DecodeState]) throws {
        guard chunks.count == states.count else { throw DecodeError.chunkCount(chunks: chunks.count, states: states.count) }
        for (index, chunk) in chunks.enumerated() {
            guard chunk.rank == 2, chunk.shape[1] == hiddenSize else {
                throw DecodeError.chunkShape(index: index, shape: chunk.shape, hiddenSize: hiddenSize)
            }
            try states[index].cache.reserve(chunk.shape[0])
        }
    }

    /// Runs one `[S, E]` sequence through its decode state in chunks of the given lengths and returns
    /// the `[S, E]` outputs stacked: the decode path of `cca forward --chunks`.
    public func forwardInChunks(_ x: Tensor, chunkLengths: [Int]) throws -> Tensor {
        let length = x.shape[0]
        guard chunkLengths.reduce(0, +) == length, chunkLengths.allSatisfy({ $0 >= 0 }) else {
            throw DecodeError.chunksDoNotSum(chunks: chunkLengths, length: length)
        }
        var states = [makeDecodeState(capacity: length)]
        var outputs: [Float] = []
        var start = 0
        for chunkLength in chunkLengths {
            let chunk = try Tensor(shape: [chunkLength, hiddenSize],
                                   storage: Array(x.storage[(start * hiddenSize)..<((start + chunkLength) * hiddenSize)]))
            outputs += try decode([chunk], states: &states)[0].storage
            start += chunkLength
        }
        return try Tensor(shape: [length, hiddenSize], storage: outputs)
    }
}

/// Attention of new query rows against each sequence's cache (keys and values already appended).
///
/// - Parameters:
///   - queries: per sequence, `[S_i, Hq, dk]` rows.
///   - valuesInKeys: values are the first `dv` columns of the key rows (MLA's shared latent).
func attendToCaches(queries: [Tensor], caches: [KVCache], heads: CausalAttention.Heads, valuesInKeys: Bool = false) -> [Tensor] {
    var outputs = queries.map { Tensor(zeros: [$0.shape[0], heads.queryHeads, heads.valueDim]) }
    var operands: [CausalAttention.Operands] = []
    // Plain buffers, because the core reads every sequence at once and arrays only lend pointers in closures.
    var buffers: [UnsafeMutablePointer<Float>] = []
    for (index, q) in queries.enumerated() {
        let rows = q.shape[0], cache = caches[index]
        let qBuffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, q.count))
        qBuffer.update(from: q.storage, count: q.count)
        let outBuffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * heads.queryHeads * heads.valueDim))
        buffers += [qBuffer, outBuffer]
        guard rows > 0 else { continue }
        operands.append(CausalAttention.Operands(
            q: qBuffer, queryRowStride: heads.queryHeads * heads.keyDim,
            k: cache.keys, keyRowStride: cache.keyWidth,
            v: valuesInKeys ? cache.keys : cache.values, valueRowStride: valuesInKeys ? cache.keyWidth : cache.valueWidth,
            out: outBuffer, outRowStride: heads.queryHeads * heads.valueDim,
            queries: rows, queryOffset: cache.length - rows))
    }
    CausalAttention.run(operands, heads: heads)
    for index in queries.indices {
        let outBuffer = buffers[2 * index + 1]
        outputs[index].storage = Array(UnsafeBufferPointer(start: outBuffer, count: outputs[index].count))
    }
    buffers.forEach { $0.deallocate() }
    return outputs
}
