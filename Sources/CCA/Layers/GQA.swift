/// Configuration of grouped-query attention (and of MHA, where both head counts are equal).
public struct GQAConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var queryHeads: Int
    public var keyValueHeads: Int
    public var headDim: Int
    public var rope: RoPEConfig

    /// - Parameter headDim: defaults to `hiddenSize / queryHeads`.
    public init(hiddenSize: Int, queryHeads: Int, keyValueHeads: Int, headDim: Int? = nil,
                rope: RoPEConfig = RoPEConfig(theta: 10_000, fraction: 1)) {
        self.hiddenSize = hiddenSize
        self.queryHeads = queryHeads
        self.keyValueHeads = keyValueHeads
        self.headDim = headDim ?? (queryHeads > 0 ? hiddenSize / queryHeads : 0)
        self.rope = rope
    }

    /// Throws a ``ConfigError`` naming the first setting that cannot work.
    public func validate() throws {
        try ConfigError.requirePositive(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                         "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireDimensions(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                            "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireTensorSizes(GQA.weightShapes(self))
        guard queryHeads % keyValueHeads == 0 else {
            throw ConfigError.headsDoNotDivide(queryHeads: queryHeads, keyValueHeads: keyValueHeads)
        }
        _ = try rope.embedding(headDim: headDim)
    }
}

/// Grouped-query attention: `Hq` query heads share `Hkv` key/value heads in contiguous groups, with RoPE.
///
/// Weights (Llama names): `q_proj.weight` `[Hq·d, E]`, `k_proj.weight` and `v_proj.weight` `[Hkv·d, E]`,
/// `o_proj.weight` `[E, Hq·d]`.
public struct GQA: AttentionLayer {
    public let config: GQAConfig
    public let weights: [String: Tensor]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    /// The weight names and shapes this config needs.
    public static func weightShapes(_ config: GQAConfig) -> [String: [Int]] {
        let (e, qWidth, kvWidth) = (config.hiddenSize, config.queryHeads * config.headDim, config.keyValueHeads * config.headDim)
        return ["q_proj.weight": [qWidth, e], "k_proj.weight": [kvWidth, e], "v_proj.weight": [kvWidth, e], "o_proj.weight": [e, qWidth]]
    }

    /// A layer with random weights, reproducible from `seed`.
    public init(config: GQAConfig, seed: UInt64 = 0) throws {
        try config.validate()
        try self.init(config: config, weights: randomWeights(Self.weightShapes(config), seed: seed))
    }

    /// A layer with the given weights; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: GQAConfig, weights: [String: Tensor]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(Self.weightShapes(config))
        rotary = try config.rope.embedding(headDim: config.headDim)
    }

    public func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        let (b, s) = (input.batch, input.length)
        let (q, k, v) = try project(input.x, firstPositions: [Int](repeating: 0, count: b))
        let attended = CausalAttention.forward(q: q, k: k, v: v, scale: attentionScale, keyValid: input.keyValid)
        var y = linear(try attended.reshaped([b, s, config.queryHeads * config.headDim]), weights["o_proj.weight"]!)
        input.zeroPadded(&y)
        return y
    }

    var attentionScale: Float { 1 / Float(config.headDim).squareRoot() }

    /// `q` `[B,S,Hq,d]`, `k` and `v` `[B,S,Hkv,d]` for rows of `x`, sequence `b` starting at `firstPositions[b]`.
    func project(_ x: Tensor, firstPositions: [Int]) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let (b, s, d) = (x.shape[0], x.shape[1], config.headDim)
        var q = try linear(x, weights["q_proj.weight"]!).reshaped([b, s, config.queryHeads, d])
        var k = try linear(x, weights["k_proj.weight"]!).reshaped([b, s, config.keyValueHeads, d])
        let v = try linear(x, weights["v_proj.weight"]!).reshaped([b, s, config.keyValueHeads, d])
        rotary.apply(to: &q, firstPositions: firstPositions)
        rotary.apply(to: &k, firstPositions: firstPositions)
        return (q, k, v)
    }
}

/// Multi-head attention: ``GQA`` with one key/value head per query head.
public struct MHA: AttentionLayer {
    public let inner: GQA
    public var config: GQAConfig { inner.config }
    public var hiddenSize: Int { inner.hiddenSize }
    public var weights: [String: Tensor] { inner.weights }

    /// - Parameter headDim: defaults to `hiddenSize / heads`.
    public init(hiddenSize: Int, heads: Int, headDim: Int? = nil,
                rope: RoPEConfig = RoPEConfig(theta: 10_000, fraction: 1), seed: UInt64 = 0) throws {
        inner = try GQA(config: GQAConfig(hiddenSize: hiddenSize, queryHeads: heads, keyValueHeads: heads,
                                          headDim: headDim, rope: rope), seed: seed)
    }

    /// Wraps a GQA layer whose head counts are equal.
    init(inner: GQA) { self.inner = inner }

    public init(config: GQAConfig, weights: [String: Tensor]) throws {
        guard config.queryHeads == config.keyValueHeads else {
            throw ConfigError.invalidValue(name: "num_key_value_heads", value: "\(config.keyValueHeads)",
                                           expected: "num_attention_heads (\(config.queryHeads)) for MHA")
        }
        inner = try GQA(config: config, weights: weights)
    }

    public func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor { try inner.forward(x, mask: mask) }
}
