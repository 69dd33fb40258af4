/// MLA decoding in the absorbed form: the cache holds only `[c_kv ; k_rope]` (`dc + dr` per token), and
/// `W_uk` is folded into the query, `W_uv` applied after attention:
/// `q_h·k_h = (q_nope_h·W_uk,h)·c_kv + q_rope_h·k_rope` and `Σ p·v_h = (Σ p·c_kv)·W_uv,hᵀ`.
/// So decoding is ordinary attention with one shared KV head of width `dc + dr` whose values are its
/// first `dc` columns.
extension MLA: DecodingAttention {
    public func makeDecodeState(capacity: Int) -> CacheOnlyDecodeState {
        CacheOnlyDecodeState(cache: KVCache(capacity: capacity, keyWidth: config.keyValueRank + config.ropeHeadDim, valueWidth: 0))
    }

    public func decode(_ chunks: [Tensor], states: inout [CacheOnlyDecodeState]) throws -> [Tensor] {
        try validate(chunks, states)
        let (h, dn, dr, dv, dc) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.valueHeadDim, config.keyValueRank)
        let upProjection = weights["kv_b_proj.weight"]!
        var absorbedQueries: [Tensor] = []
        for (chunk, state) in zip(chunks, states) {
            let (rows, position) = (chunk.shape[0], state.length)
            let x = try chunk.reshaped([1, rows, hiddenSize])
            let latentRows = try latent(x, firstPositions: [position])
            try latentRows.storage.withUnsafeBufferPointer {
                try state.cache.append(rows: rows, keys: $0.baseAddress!, keyStride: dc + dr)
            }
            let q = try queries(x, firstPositions: [position])
            var absorbed = Tensor(zeros: [rows, h, dc + dr])
            q.storage.withUnsafeBufferPointer { qs in
                upProjection.storage.withUnsafeBufferPointer { w in
                    absorbed.storage.withUnsafeMutableBufferPointer { out in
                        for head in 0..<h {
                            // q_nope_h [rows, dn] · W_uk,h [dn, dc]
                            MatrixMultiply.gemm(m: rows, n: dc, k: dn, a: qs.baseAddress! + head * (dn + dr), lda: h * (dn + dr),
                                                b: w.baseAddress! + head * (dn + dv) * dc, ldb: dc,
                                                c: out.baseAddress! + head * (dc + dr), ldc: h * (dc + dr))
                            for r in 0..<rows {
                                for i in 0..<dr { out[(r * h + head) * (dc + dr) + dc + i] = qs[(r * h + head) * (dn + dr) + dn + i] }
                            }
                        }
                    }
                }
            }
            absorbedQueries.append(absorbed)
        }
        let heads = CausalAttention.Heads(queryHeads: h, keyValueHeads: 1, keyDim: dc + dr, valueDim: dc, scale: attentionScale)
        let latentOutputs = attendToCaches(queries: absorbedQueries, caches: states.map(\.cache), heads: heads, valuesInKeys: true)
        return try latentOutputs.map { latentOutput in
            let rows = latentOutput.shape[0]
            var attended = Tensor(zeros: [rows, h * dv])
            latentOutput.storage.withUnsafeBufferPointer { o in
                upProjection.storage.withUnsafeBufferPointer { w in
                    attended.storage.withUnsafeMutableBufferPointer { out in
                        for head in 0..<h {
                            // latent_h [rows, dc] · W_uv,hᵀ (W_uv,h is [dv, dc])
                            MatrixMultiply.gemm(transposeB: true, m: rows, n: dv, k: dc, a: o.baseAddress! + head * dc, lda: h * dc,
                                                b: w.baseAddress! + (head * (dn + dv) + dn) * dc, ldb: dc,
                                                c: out.baseAddress! + head * dv, ldc: h * dv)
                        }
                    }
                }
            }
            return linear(try attended.reshaped([rows, h * dv]), weights["o_proj.weight"]!)
        }
    }
}
