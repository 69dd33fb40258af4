/// Configuration of grouped-query attention, and of MHA where both head counts are equal.
public struct GQAConfig: AttentionConfig, Codable, Equatable {
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

    /// Multi-head attention: `heads` query heads, each with its own key/value head.
    public static func mha(hiddenSize: Int, heads: Int, headDim: Int? = nil,
                           rope: RoPEConfig = RoPEConfig(theta: 10_000, fraction: 1)) -> GQAConfig {
        GQAConfig(hiddenSize: hiddenSize, queryHeads: heads, keyValueHeads: heads, headDim: headDim, rope: rope)
    }

    public var kindName: String { queryHeads == keyValueHeads ? "mha" : "gqa" }
    public var queryWidth: Int { queryHeads * headDim }
    public var keyWidth: Int { keyValueHeads * headDim }

    public func validate() throws {
        try ConfigError.requirePositive(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                         "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireDimensions(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                            "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireTensorSizes(weightShapes)
        guard queryHeads % keyValueHeads == 0 else {
            throw ConfigError.headsDoNotDivide(queryHeads: queryHeads, keyValueHeads: keyValueHeads)
        }
        _ = try rope.embedding(headDim: headDim)
    }

    /// Llama names: `q_proj.weight` `[Hq·d, E]`, `k_proj.weight` and `v_proj.weight` `[Hkv·d, E]`,
    /// `o_proj.weight` `[E, Hq·d]`.
    public var weightShapes: [String: [Int]] {
        ["q_proj.weight": [queryWidth, hiddenSize], "k_proj.weight": [keyWidth, hiddenSize],
         "v_proj.weight": [keyWidth, hiddenSize], "o_proj.weight": [hiddenSize, queryWidth]]
    }

    public func initialWeights(seed: UInt64) throws -> [String: Tensor<Float>] {
        try validate()
        return randomWeights(weightShapes, seed: seed)
    }

    public func makeLayer<S: TensorScalar>(weights: [String: Tensor<S>]) throws -> any AttentionLayer<S> {
        try GQA(config: self, weights: weights)
    }

    public var fileMembers: [(String, JSONValue)] {
        [("attention", .string(kindName))] + headMembers(hiddenSize, queryHeads, keyValueHeads, headDim) + rope.fileMembers
    }
}
