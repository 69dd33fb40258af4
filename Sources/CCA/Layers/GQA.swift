/// Grouped-query attention (and MHA, where every query head has its own key/value head): `Hq` query heads
/// share `Hkv` key/value heads in contiguous groups, with RoPE.
public struct GQA<Scalar: TensorScalar>: AttentionLayer {
    public let config: GQAConfig
    public let weights: [String: Tensor<Scalar>]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    /// A layer with the given weights; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: GQAConfig, weights: [String: Tensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(config.weightShapes)
        rotary = try config.rope.embedding(headDim: config.headDim)
    }

    /// A layer with random weights, reproducible from `seed`.
    public init(config: GQAConfig, seed: UInt64 = 0) throws {
        try self.init(config: config, weights: config.initialWeights(seed: seed).mapValues { Tensor<Scalar>($0) })
    }

    var heads: Attention.Heads {
        Attention.Heads(queryHeads: config.queryHeads, keyValueHeads: config.keyValueHeads, keyDim: config.headDim,
                        valueDim: config.headDim, scale: 1 / Double(config.headDim).squareRoot())
    }

    public func makeState(capacity: Int) throws -> DecodeState<Scalar> {
        try DecodeState(capacity: capacity, keyWidth: config.keyWidth, valueWidth: config.keyWidth, carry: [])
    }

    public struct Saved: Sendable {
        var x: Tensor<Scalar>, layout: SequenceLayout, positions: [Int]
        var q: Tensor<Scalar>, k: Tensor<Scalar>, v: Tensor<Scalar>, attention: Attention.Saved<Scalar>
    }

    // Specialised, so that the code between the operations (fresh tensors, copies) runs on Float, not through generics.
    @_specialize(where Scalar == Float)
    public func forward(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keep: Bool) throws
        -> (y: Tensor<Scalar>, saved: Saved?) {
        let x0 = try prepare(x, layout: layout, states: states, keyWidth: config.keyWidth, valueWidth: config.keyWidth, carry: 0)
        let (d, hq, hkv) = (config.headDim, config.queryHeads, config.keyValueHeads)
        let positions = layout.positions(firstPositions: states?.map(\.length))
        var q = Linear.forward(x0, weights["q_proj.weight"]!), k = Linear.forward(x0, weights["k_proj.weight"]!)
        let v = Linear.forward(x0, weights["v_proj.weight"]!)
        rotary.forward(&q, positions: positions, heads: hq, headStride: d)
        rotary.forward(&k, positions: positions, heads: hkv, headStride: d)
        if let states { try append(k, v, to: states, layout: layout) }
        let attention = attend(q: q, k: k, v: v, layout: layout, states: states, heads: heads)
        let y = layout.zeroingPadding(Linear.forward(attention.out, weights["o_proj.weight"]!))
        let saved = keep && states == nil
            ? Saved(x: x0, layout: layout, positions: positions, q: q, k: k, v: v, attention: attention) : nil
        return (Tensor(checked: x.shape, y.storage), saved)
    }

    public func backward(_ dy: Tensor<Scalar>, _ saved: Saved) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>]) {
        let (d, hq, hkv, layout) = (config.headDim, config.queryHeads, config.keyValueHeads, saved.layout)
        try layout.validate(dy, width: hiddenSize, name: "output gradient dy")
        var grads: [String: Tensor<Scalar>] = [:]
        let (dOut, dOutput) = Linear.backward(layout.zeroingPadding(dy), x: saved.attention.out, weight: weights["o_proj.weight"]!)
        grads["o_proj.weight"] = dOutput
        var (dq, dk, dv) = Attention.backward(dOut: dOut, q: saved.q, k: saved.k, v: saved.v, saved: saved.attention,
                                              layout: layout, heads: heads)
        rotary.backward(&dq, positions: saved.positions, heads: hq, headStride: d)
        rotary.backward(&dk, positions: saved.positions, heads: hkv, headStride: d)
        var dx = Tensor<Scalar>(zeros: saved.x.shape)
        for (name, gradient) in [("q_proj.weight", dq), ("k_proj.weight", dk), ("v_proj.weight", dv)] {
            grads[name] = Linear.backward(gradient, x: saved.x, weights: [weights[name]!], dx: &dx).dWeights[0]
        }
        return (Tensor(checked: dy.shape, layout.zeroingPadding(dx).storage), grads)
    }
}

extension AttentionLayer {
    /// Appends this call's keys and values `[rows, width]` to each sequence's cache.
    func append(_ k: Tensor<Scalar>, _ v: Tensor<Scalar>?, to states: [DecodeState<Scalar>], layout: SequenceLayout) throws {
        let (keyWidth, valueWidth) = (k.count / max(1, layout.rows), (v?.count ?? 0) / max(1, layout.rows))
        for (state, range) in zip(states, layout.sequences) {
            let keys = Tensor(checked: [range.count, keyWidth], Array(k.storage[(range.lowerBound * keyWidth)..<(range.upperBound * keyWidth)]))
            let values = v.map { Tensor(checked: [range.count, valueWidth], Array($0.storage[(range.lowerBound * valueWidth)..<(range.upperBound * valueWidth)])) }
            try state.append(keys: keys, values: values)
        }
    }
}
