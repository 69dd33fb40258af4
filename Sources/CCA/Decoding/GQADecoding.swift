/// The decode state of layers whose cache is all they remember: GQA, MHA and MLA.
public struct CacheOnlyDecodeState: DecodeStateMemory {
    public let cache: KVCache
    public var length: Int { cache.length }
    public var fixedStateBytes: Int { 0 }
}

extension GQA: DecodingAttention {
    /// A state caching `Hkv·d` keys and `Hkv·d` values per token.
    public func makeDecodeState(capacity: Int) -> CacheOnlyDecodeState {
        let width = config.keyValueHeads * config.headDim
        return CacheOnlyDecodeState(cache: KVCache(capacity: capacity, keyWidth: width, valueWidth: width))
    }

    public func decode(_ chunks: [Tensor], states: inout [CacheOnlyDecodeState]) throws -> [Tensor] {
        try validate(chunks, states)
        let (hq, hkv, d) = (config.queryHeads, config.keyValueHeads, config.headDim)
        var queries: [Tensor] = []
        for (chunk, state) in zip(chunks, states) {
            let rows = chunk.shape[0]
            let (q, k, v) = try project(chunk.reshaped([1, rows, hiddenSize]), firstPositions: [state.length])
            try k.storage.withUnsafeBufferPointer { keys in
                try v.storage.withUnsafeBufferPointer { values in
                    try state.cache.append(rows: rows, keys: keys.baseAddress!, keyStride: hkv * d,
                                           values: values.baseAddress!, valueStride: hkv * d)
                }
            }
            queries.append(try q.reshaped([rows, hq, d]))
        }
        let heads = CausalAttention.Heads(queryHeads: hq, keyValueHeads: hkv, keyDim: d, valueDim: d, scale: attentionScale)
        return try attendToCaches(queries: queries, caches: states.map(\.cache), heads: heads).map {
            linear(try $0.reshaped([$0.shape[0], hq * d]), weights["o_proj.weight"]!)
        }
    }
}

extension MHA: DecodingAttention {
    public func makeDecodeState(capacity: Int) -> CacheOnlyDecodeState { inner.makeDecodeState(capacity: capacity) }

    public func decode(_ chunks: [Tensor], states: inout [CacheOnlyDecodeState]) throws -> [Tensor] {
        try inner.decode(chunks, states: &states)
    }
}
