/// Multi-head latent attention as in DeepSeek-V2: queries through a normalised compressed `c_q` and an
/// up-projection; keys and values through a shared normalised `c_kv` and up-projections, plus a decoupled
/// RoPE key of width `dr` shared by all heads.
///
/// Without decode states the keys and values are expanded per head. With states the layer runs in the
/// absorbed form: the cache holds only `[c_kv ; k_rope]` (`dc + dr` per token), `W_uk` is folded into the
/// query and `W_uv` applied after attention — `q_h·k_h = (q_nope_h·W_uk,h)·c_kv + q_rope_h·k_rope` and
/// `Σ p·v_h = (Σ p·c_kv)·W_uv,hᵀ` — so decoding is attention with one shared KV head whose values are
/// the first `dc` columns of its keys. Both forms give the same outputs.
public struct MLA<Scalar: TensorScalar>: AttentionLayer {
    public let config: MLAConfig
    public let weights: [String: Tensor<Scalar>]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    /// A layer with the given weights; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: MLAConfig, weights: [String: Tensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(config.weightShapes)
        rotary = try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim)
    }

    /// A layer with random weights, reproducible from `seed`.
    public init(config: MLAConfig, seed: UInt64 = 0) throws {
        try self.init(config: config, weights: config.initialWeights(seed: seed).mapValues { Tensor<Scalar>($0) })
    }

    var scale: Double { 1 / Double(config.queryHeadDim).squareRoot() }
    var latentWidth: Int { config.keyValueRank + config.ropeHeadDim }

    public func makeState(capacity: Int) throws -> DecodeState<Scalar> {
        try DecodeState(capacity: capacity, keyWidth: latentWidth, valueWidth: 0, carry: [])
    }

    public struct Saved: Sendable {
        var x: Tensor<Scalar>, layout: SequenceLayout, positions: [Int]
        var compressedQuery: Tensor<Scalar>, queryInverseRMS: [Scalar], normalizedQuery: Tensor<Scalar>
        var compressedKeyValue: Tensor<Scalar>, keyValueInverseRMS: [Scalar], normalizedKeyValue: Tensor<Scalar>
        var q: Tensor<Scalar>, k: Tensor<Scalar>, v: Tensor<Scalar>, attention: Attention.Saved<Scalar>
    }

    /// The pieces both forms share: the queries `[rows, H, dn + dr]` with RoPE, and the cached latent.
    struct Projected {
        var compressedQuery: Tensor<Scalar>, queryInverseRMS: [Scalar], normalizedQuery: Tensor<Scalar>, q: Tensor<Scalar>
        var compressedKeyValue: Tensor<Scalar>, keyValueInverseRMS: [Scalar], normalizedKeyValue: Tensor<Scalar>
        /// `[rows, dr]`, rotated.
        var ropeKey: Tensor<Scalar>
    }

    func project(_ x: Tensor<Scalar>, positions: [Int]) -> Projected {
        let (h, dn, dr, dc) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.keyValueRank)
        let epsilon = Scalar(config.normEpsilon)
        let compressedQuery = Linear.forward(x, weights["q_a_proj.weight"]!)
        let (normalizedQuery, queryInverseRMS) = RMSNorm.forward(compressedQuery, weight: weights["q_a_layernorm.weight"]!,
                                                                 epsilon: epsilon)
        var q = Linear.forward(normalizedQuery, weights["q_b_proj.weight"]!)
        rotary.forward(&q, positions: positions, heads: h, headStride: dn + dr, offset: dn)
        let keyValueInput = Linear.forward(x, weights["kv_a_proj_with_mqa.weight"]!)
        let compressedKeyValue = keyValueInput.columns(0..<dc)
        var ropeKey = keyValueInput.columns(dc..<(dc + dr))
        rotary.forward(&ropeKey, positions: positions, heads: 1, headStride: dr)
        let (normalizedKeyValue, keyValueInverseRMS) = RMSNorm.forward(compressedKeyValue,
                                                                       weight: weights["kv_a_layernorm.weight"]!, epsilon: epsilon)
        return Projected(compressedQuery: compressedQuery, queryInverseRMS: queryInverseRMS, normalizedQuery: normalizedQuery,
                         q: q, compressedKeyValue: compressedKeyValue, keyValueInverseRMS: keyValueInverseRMS,
                         normalizedKeyValue: normalizedKeyValue, ropeKey: ropeKey)
    }

    // Specialised, so that the code between the operations (fresh tensors, copies) runs on Float, not through generics.
    @_specialize(where Scalar == Float)
    public func forward(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keep: Bool) throws
        -> (y: Tensor<Scalar>, saved: Saved?) {
        let x0 = try prepare(x, layout: layout, states: states, keyWidth: latentWidth, valueWidth: 0, carry: 0)
        let (h, dn, dr, dv) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.valueHeadDim)
        let positions = layout.positions(firstPositions: states?.map(\.length))
        let p = project(x0, positions: positions)
        if let states {
            let latent = Tensor.concatenatingColumns([p.normalizedKeyValue, p.ropeKey])
            try append(latent, nil, to: states, layout: layout)
            let attended = absorbedAttention(p.q, layout: layout, states: states)
            return (Tensor(checked: x.shape, Linear.forward(attended, weights["o_proj.weight"]!).storage), nil)
        }
        // Expanded form: per-head keys [k_nope ; k_rope] and values from c_kv.
        let keyValue = Linear.forward(p.normalizedKeyValue, weights["kv_b_proj.weight"]!)
        var k = Tensor<Scalar>(zeros: [layout.rows, h, dn + dr]), v = Tensor<Scalar>(zeros: [layout.rows, h, dv])
        for row in 0..<layout.rows {
            for head in 0..<h {
                let index = row * h + head, source = index * (dn + dv)
                for i in 0..<dn { k.storage[index * (dn + dr) + i] = keyValue.storage[source + i] }
                for i in 0..<dr { k.storage[index * (dn + dr) + dn + i] = p.ropeKey.storage[row * dr + i] }
                for i in 0..<dv { v.storage[index * dv + i] = keyValue.storage[source + dn + i] }
            }
        }
        let heads = Attention.Heads(queryHeads: h, keyValueHeads: h, keyDim: dn + dr, valueDim: dv, scale: scale)
        let attention = Attention.forward(q: p.q, k: k, v: v, layout: layout, heads: heads)
        let y = layout.zeroingPadding(Linear.forward(attention.out, weights["o_proj.weight"]!))
        let saved = keep ? Saved(x: x0, layout: layout, positions: positions, compressedQuery: p.compressedQuery,
                                 queryInverseRMS: p.queryInverseRMS, normalizedQuery: p.normalizedQuery,
                                 compressedKeyValue: p.compressedKeyValue, keyValueInverseRMS: p.keyValueInverseRMS,
                                 normalizedKeyValue: p.normalizedKeyValue, q: p.q, k: k, v: v, attention: attention) : nil
        return (Tensor(checked: x.shape, y.storage), saved)
    }

    /// Attention of the queries `[rows, H, dn + dr]` against the latent caches, in the absorbed form;
    /// returns `[rows, H·dv]`.
    func absorbedAttention(_ q: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]) -> Tensor<Scalar> {
        let (h, dn, dr, dv, dc) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.valueHeadDim, config.keyValueRank)
        let rows = layout.rows
        var absorbed = Tensor<Scalar>(zeros: [rows, h, dc + dr])
        var attended = Tensor<Scalar>(zeros: [rows, h * dv])
        guard rows > 0 else { return attended }
        let upProjection = weights["kv_b_proj.weight"]!
        q.storage.withUnsafeBufferPointer { qs in upProjection.storage.withUnsafeBufferPointer { w in
        absorbed.storage.withUnsafeMutableBufferPointer { out in
            for head in 0..<h {
                // q_nope_h [rows, dn] · W_uk,h [dn, dc]; q_rope_h copied beside it.
                Scalar.gemm(transposeA: false, transposeB: false, m: rows, n: dc, k: dn, alpha: 1,
                            a: qs.baseAddress! + head * (dn + dr), lda: h * (dn + dr),
                            b: w.baseAddress! + head * (dn + dv) * dc, ldb: dc,
                            beta: 0, c: out.baseAddress! + head * (dc + dr), ldc: h * (dc + dr), parallel: true)
                for r in 0..<rows {
                    for i in 0..<dr { out[(r * h + head) * (dc + dr) + dc + i] = qs[(r * h + head) * (dn + dr) + dn + i] }
                }
            }
        }}}
        let heads = Attention.Heads(queryHeads: h, keyValueHeads: 1, keyDim: dc + dr, valueDim: dc, scale: scale)
        let latentOutput = attend(q: absorbed, k: absorbed, v: absorbed, layout: layout, states: states, heads: heads,
                                  valuesInKeys: true).out
        latentOutput.storage.withUnsafeBufferPointer { o in upProjection.storage.withUnsafeBufferPointer { w in
        attended.storage.withUnsafeMutableBufferPointer { out in
            for head in 0..<h {
                // latent_h [rows, dc] · W_uv,hᵀ (W_uv,h is [dv, dc]).
                Scalar.gemm(transposeA: false, transposeB: true, m: rows, n: dv, k: dc, alpha: 1,
                            a: o.baseAddress! + head * dc, lda: h * dc, b: w.baseAddress! + (head * (dn + dv) + dn) * dc, ldb: dc,
                            beta: 0, c: out.baseAddress! + head * dv, ldc: h * dv, parallel: true)
            }
        }}}
        return attended
    }

    public func backward(_ dy: Tensor<Scalar>, _ saved: Saved) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>]) {
        let (h, dn, dr, dv) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.valueHeadDim)
        let layout = saved.layout, rows = layout.rows
        try layout.validate(dy, width: hiddenSize, name: "output gradient dy")
        var grads: [String: Tensor<Scalar>] = [:]
        let (dOut, dOutput) = Linear.backward(layout.zeroingPadding(dy), x: saved.attention.out, weight: weights["o_proj.weight"]!)
        grads["o_proj.weight"] = dOutput
        let heads = Attention.Heads(queryHeads: h, keyValueHeads: h, keyDim: dn + dr, valueDim: dv, scale: scale)
        var (dq, dk, dValues) = Attention.backward(dOut: dOut, q: saved.q, k: saved.k, v: saved.v, saved: saved.attention,
                                                   layout: layout, heads: heads)
        // Queries: RoPE, the up-projection, the norm, the down-projection.
        rotary.backward(&dq, positions: saved.positions, heads: h, headStride: dn + dr, offset: dn)
        let (dNormalizedQuery, dQueryUp) = Linear.backward(dq, x: saved.normalizedQuery, weight: weights["q_b_proj.weight"]!)
        let (dCompressedQuery, dQueryNorm) = RMSNorm.backward(dNormalizedQuery, x: saved.compressedQuery,
                                                              weight: weights["q_a_layernorm.weight"]!,
                                                              inverseRMS: saved.queryInverseRMS)
        // Keys and values: gather the per-head gradients back into kv_b_proj's output and the shared RoPE key.
        var dKeyValue = Tensor<Scalar>(zeros: [rows, h * (dn + dv)]), dRopeKey = Tensor<Scalar>(zeros: [rows, dr])
        for row in 0..<rows {
            for head in 0..<h {
                let index = row * h + head, target = index * (dn + dv)
                for i in 0..<dn { dKeyValue.storage[target + i] = dk.storage[index * (dn + dr) + i] }
                for i in 0..<dr { dRopeKey.storage[row * dr + i] += dk.storage[index * (dn + dr) + dn + i] }
                for i in 0..<dv { dKeyValue.storage[target + dn + i] = dValues.storage[index * dv + i] }
            }
        }
        let (dNormalizedKeyValue, dKeyValueUp) = Linear.backward(dKeyValue, x: saved.normalizedKeyValue,
                                                                 weight: weights["kv_b_proj.weight"]!)
        let (dCompressedKeyValue, dKeyValueNorm) = RMSNorm.backward(dNormalizedKeyValue, x: saved.compressedKeyValue,
                                                                    weight: weights["kv_a_layernorm.weight"]!,
                                                                    inverseRMS: saved.keyValueInverseRMS)
        rotary.backward(&dRopeKey, positions: saved.positions, heads: 1, headStride: dr)
        let dKeyValueInput = Tensor.concatenatingColumns([dCompressedKeyValue, dRopeKey])
        var dx = Tensor<Scalar>(zeros: saved.x.shape)
        grads["q_a_proj.weight"] = Linear.backward(dCompressedQuery, x: saved.x, weights: [weights["q_a_proj.weight"]!], dx: &dx).dWeights[0]
        grads["kv_a_proj_with_mqa.weight"] = Linear.backward(dKeyValueInput, x: saved.x,
                                                             weights: [weights["kv_a_proj_with_mqa.weight"]!], dx: &dx).dWeights[0]
        grads["q_b_proj.weight"] = dQueryUp
        grads["q_a_layernorm.weight"] = dQueryNorm
        grads["kv_b_proj.weight"] = dKeyValueUp
        grads["kv_a_layernorm.weight"] = dKeyValueNorm
        return (Tensor(checked: dy.shape, layout.zeroingPadding(dx).storage), grads)
    }
}
