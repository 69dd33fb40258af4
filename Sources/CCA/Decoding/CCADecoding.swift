/// CCA's decode state: the latent KV cache (k after mean, norm, temperature and RoPE, and v; `Hkv·d`
/// each per token) plus the fixed convolution and value-shift state.
public struct CCADecodeState: DecodeStateMemory {
    public let cache: KVCache
    public var sequence: CCA.SequenceState
    public var length: Int { cache.length }
    /// The last two pre-convolution rows (`2·ct`) and the previous delayed value projection (`ek/2`).
    public var fixedStateBytes: Int {
        (sequence.convolutionHistory.count + sequence.previousDelayedValue.count) * MemoryLayout<Float>.size
    }
}

extension CCA: DecodingAttention {
    public func makeDecodeState(capacity: Int) -> CCADecodeState {
        CCADecodeState(cache: KVCache(capacity: capacity, keyWidth: config.keyWidth, valueWidth: config.keyWidth),
                       sequence: SequenceState(config))
    }

    public func decode(_ chunks: [Tensor], states: inout [CCADecodeState]) throws -> [Tensor] {
        try validate(chunks, states)
        let (hq, hkv, d, ek) = (config.queryHeads, config.keyValueHeads, config.headDim, config.keyWidth)
        var queries: [Tensor] = []
        for index in states.indices {
            let rows = chunks[index].shape[0]
            var sequenceState = [states[index].sequence]
            let (q, k, v) = try project(chunks[index].reshaped([1, rows, hiddenSize]), states: &sequenceState)
            states[index].sequence = sequenceState[0]
            try k.storage.withUnsafeBufferPointer { keys in
                try v.storage.withUnsafeBufferPointer { values in
                    try states[index].cache.append(rows: rows, keys: keys.baseAddress!, keyStride: ek,
                                                   values: values.baseAddress!, valueStride: ek)
                }
            }
            queries.append(try q.reshaped([rows, hq, d]))
        }
        let heads = CausalAttention.Heads(queryHeads: hq, keyValueHeads: hkv, keyDim: d, valueDim: d,
                                          scale: 1 / Float(d).squareRoot())
        return try attendToCaches(queries: queries, caches: states.map(\.cache), heads: heads).map {
            linear(try $0.reshaped([$0.shape[0], config.queryWidth]), weights["o_proj.weight"]!)
        }
    }
}
