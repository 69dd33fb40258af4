/// Compressed Convolutional Attention (CCA), and CCGQA when `queryHeads > keyValueHeads`.
///
/// Queries, keys and values are down-projected to latent heads of width `d`; q and k pass through
/// ``CCAPrologue`` (two causal convolutions, the QK-mean, L2 normalisation with the key temperature,
/// RoPE); half the value channels see the previous token (``ValueShift``); causal attention runs inside the
/// latent space; `o_proj` maps back to `E`. See `docs/MATH.md` for the math.
///
/// Weight names are those of the transformers ZAYA attention module (`qkv_proj.q_proj.weight`, ...).
/// A decode state's fixed part is the last two pre-convolution rows `[2, ct]` followed by the previous
/// token's delayed value `[ek/2]`.
public struct CCA<Scalar: TensorScalar>: AttentionLayer {
    public let config: CCAConfig
    public let weights: [String: Tensor<Scalar>]
    let prologue: CCAPrologue<Scalar>

    public var hiddenSize: Int { config.hiddenSize }

    /// A layer with the given weights; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: CCAConfig, weights: [String: Tensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(config.weightShapes)
        prologue = CCAPrologue(config: config, weights: self.weights, rotary: try config.rope.embedding(headDim: config.headDim))
    }

    /// A layer with random weights, reproducible from `seed` (see ``CCAConfig/initialWeights(seed:)``).
    public init(config: CCAConfig, seed: UInt64 = 0) throws {
        try self.init(config: config, weights: config.initialWeights(seed: seed).mapValues { Tensor<Scalar>($0) })
    }

    var heads: Attention.Heads {
        Attention.Heads(queryHeads: config.queryHeads, keyValueHeads: config.keyValueHeads, keyDim: config.headDim,
                        valueDim: config.headDim, scale: 1 / Double(config.headDim).squareRoot(), window: config.slidingWindow)
    }
    var historyCount: Int { 2 * config.convolutionChannels }
    var carryCount: Int { historyCount + config.keyWidth / 2 }

    public func makeState(capacity: Int) throws -> DecodeState<Scalar> {
        try DecodeState(capacity: capacity, keyWidth: config.keyWidth, valueWidth: config.keyWidth,
                        carry: [Scalar](repeating: 0, count: carryCount))
    }

    public struct Saved: Sendable {
        var x: Tensor<Scalar>, layout: SequenceLayout
        var prologue: CCAPrologue<Scalar>.Saved
        var q: Tensor<Scalar>, k: Tensor<Scalar>, v: Tensor<Scalar>, attention: Attention.Saved<Scalar>
    }

    static var projectionNames: (query: [String], value: [String]) {
        (["qkv_proj.q_proj.weight", "qkv_proj.k_proj.weight"],
         ["qkv_proj.v_proj_current.weight", "qkv_proj.v_proj_delayed.weight"])
    }

    // Specialised, so that the code between the operations (fresh tensors, copies) runs on Float, not through generics.
    @_specialize(where Scalar == Float)
    public func forward(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keep: Bool) throws
        -> (y: Tensor<Scalar>, saved: Saved?) {
        let ek = config.keyWidth
        let x0 = try prepare(x, layout: layout, states: states, keyWidth: ek, valueWidth: ek, carry: carryCount)
        let names = Self.projectionNames
        // Steps 2-3: [q0 | k0], and the two value halves [current | delayed] of the same token.
        let latents = Linear.forward(x0, names.query.map { weights[$0]! })
        let projections = Linear.forward(x0, names.value.map { weights[$0]! })
        let positions = layout.positions(firstPositions: states?.map(\.length))
        let histories = states?.map { Array($0.carry[0..<historyCount]) }
        let (q, k, prologueSaved, nextHistories) = prologue.forward(latents.storage, layout: layout, histories: histories,
                                                                   positions: positions)
        var v = Tensor(checked: [layout.rows, ek], projections.storage)
        if config.valueShift {
            let shifted = ValueShift.forward(v, layout: layout, previous: states?.map { Array($0.carry[historyCount...]) })
            v = shifted.v
            for (index, state) in (states ?? []).enumerated() {
                state.carry = nextHistories[index] + shifted.last[index]
            }
        } else {
            for (index, state) in (states ?? []).enumerated() { state.carry[0..<historyCount] = nextHistories[index][...] }
        }
        if let states { try append(k, v, to: states, layout: layout) }
        let attention = attend(q: q, k: k, v: v, layout: layout, states: states, heads: heads)
        let y = layout.zeroingPadding(Linear.forward(attention.out, weights["o_proj.weight"]!))
        let saved = keep && states == nil
            ? Saved(x: x0, layout: layout, prologue: prologueSaved, q: q, k: k, v: v, attention: attention) : nil
        return (Tensor(checked: x.shape, y.storage), saved)
    }

    public func backward(_ dy: Tensor<Scalar>, _ saved: Saved) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>]) {
        let layout = saved.layout
        try layout.validate(dy, width: hiddenSize, name: "output gradient dy")
        let (dOut, dOutput) = Linear.backward(layout.zeroingPadding(dy), x: saved.attention.out, weight: weights["o_proj.weight"]!)
        let (dq, dk, dv) = Attention.backward(dOut: dOut, q: saved.q, k: saved.k, v: saved.v, saved: saved.attention,
                                              layout: layout, heads: heads)
        var (dLatents, grads) = prologue.backward(dq: dq, dk: dk, layout: layout, saved: saved.prologue)
        grads["o_proj.weight"] = dOutput
        let dProjections = config.valueShift ? ValueShift.backward(dv, layout: layout) : dv
        let names = Self.projectionNames
        var dx = Tensor<Scalar>(zeros: saved.x.shape)
        let dLatentTensor = Tensor(checked: [layout.rows, config.convolutionChannels], dLatents)
        let queryGrads = Linear.backward(dLatentTensor, x: saved.x, weights: names.query.map { weights[$0]! }, dx: &dx)
        let valueGrads = Linear.backward(dProjections, x: saved.x, weights: names.value.map { weights[$0]! }, dx: &dx)
        for (name, gradient) in zip(names.query + names.value, queryGrads.dWeights + valueGrads.dWeights) { grads[name] = gradient }
        return (Tensor(checked: dy.shape, layout.zeroingPadding(dx).storage), grads)
    }
}
