/// Configuration of multi-head latent attention (DeepSeek-V2 style).
public struct MLAConfig: AttentionConfig, Codable, Equatable {
    public var hiddenSize: Int
    public var heads: Int
    /// Width of the compressed query `c_q` (`q_lora_rank`).
    public var queryRank: Int
    /// Width of the compressed key/value `c_kv` (`kv_lora_rank`).
    public var keyValueRank: Int
    /// Per-head width of the non-rotary query/key part (`qk_nope_head_dim`).
    public var noPEHeadDim: Int
    /// Width of the decoupled RoPE key shared by all heads (`qk_rope_head_dim`).
    public var ropeHeadDim: Int
    /// Per-head value width (`v_head_dim`).
    public var valueHeadDim: Int
    public var ropeTheta: Double
    public var normEpsilon: Float

    public init(hiddenSize: Int, heads: Int, queryRank: Int, keyValueRank: Int, noPEHeadDim: Int,
                ropeHeadDim: Int, valueHeadDim: Int, ropeTheta: Double = 10_000, normEpsilon: Float = 1e-6) {
        self.hiddenSize = hiddenSize
        self.heads = heads
        self.queryRank = queryRank
        self.keyValueRank = keyValueRank
        self.noPEHeadDim = noPEHeadDim
        self.ropeHeadDim = ropeHeadDim
        self.valueHeadDim = valueHeadDim
        self.ropeTheta = ropeTheta
        self.normEpsilon = normEpsilon
    }

    /// Query/key head width `dn + dr`.
    public var queryHeadDim: Int { noPEHeadDim + ropeHeadDim }

    public func validate() throws {
        try ConfigError.requirePositive([
            "hidden_size": hiddenSize, "num_attention_heads": heads, "q_lora_rank": queryRank,
            "kv_lora_rank": keyValueRank, "qk_nope_head_dim": noPEHeadDim, "qk_rope_head_dim": ropeHeadDim,
            "v_head_dim": valueHeadDim,
        ])
        try ConfigLimits.requireDimensions([
            "hidden_size": hiddenSize, "num_attention_heads": heads, "q_lora_rank": queryRank,
            "kv_lora_rank": keyValueRank, "qk_nope_head_dim": noPEHeadDim, "qk_rope_head_dim": ropeHeadDim,
            "v_head_dim": valueHeadDim,
        ])
        try ConfigLimits.requireTensorSizes(weightShapes)
        guard normEpsilon.isFinite, normEpsilon > 0 else {
            throw ConfigError.invalidValue(name: "rms_norm_eps", value: "\(normEpsilon)", expected: "a small positive number such as 1e-6")
        }
        _ = try RoPEConfig(theta: ropeTheta, fraction: 1).embedding(headDim: ropeHeadDim)
    }

    public var kindName: String { "mla" }

    /// Names as in the transformers DeepSeek-V2 module.
    public var weightShapes: [String: [Int]] {[
        "q_a_proj.weight": [queryRank, hiddenSize],
        "q_a_layernorm.weight": [queryRank],
        "q_b_proj.weight": [heads * queryHeadDim, queryRank],
        "kv_a_proj_with_mqa.weight": [keyValueRank + ropeHeadDim, hiddenSize],
        "kv_a_layernorm.weight": [keyValueRank],
        "kv_b_proj.weight": [heads * (noPEHeadDim + valueHeadDim), keyValueRank],
        "o_proj.weight": [hiddenSize, heads * valueHeadDim],
    ]}

    /// Random weights: linears with PyTorch's scale, norm weights near 1.
    public func initialWeights(seed: UInt64) throws -> [String: Tensor<Float>] {
        try validate()
        return randomWeights(weightShapes, seed: seed) { _, shape, seed in
            shape.count == 1 ? Tensor(checked: shape, Tensor<Float>(randomNormal: shape, std: 0.1, seed: seed).storage.map { $0 + 1 }) : nil
        }
    }

    public func makeLayer<S: TensorScalar>(weights: [String: Tensor<S>]) throws -> any AttentionLayer<S> {
        try MLA(config: self, weights: weights)
    }

    public var fileMembers: [(String, JSONValue)] {
        [("attention", .string(kindName)), ("hidden_size", .integer(hiddenSize)), ("num_attention_heads", .integer(heads)),
         ("q_lora_rank", .integer(queryRank)), ("kv_lora_rank", .integer(keyValueRank)),
         ("qk_nope_head_dim", .integer(noPEHeadDim)), ("qk_rope_head_dim", .integer(ropeHeadDim)),
         ("v_head_dim", .integer(valueHeadDim)), ("rope_theta", .number("\(ropeTheta)"))]
    }
}
