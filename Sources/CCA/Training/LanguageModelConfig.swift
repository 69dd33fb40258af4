
/// Shape of a decoder-only language model: byte embedding, `layers` pre-norm blocks (RMSNorm, attention,
/// RMSNorm, SwiGLU), final RMSNorm and a tied or untied LM head. Weight names follow Llama
/// (`embed_tokens.weight`, `layers.0.self_attn.q_proj.weight`, `layers.0.mlp.gate_proj.weight`, `norm.weight`).
public struct LanguageModelConfig: Codable, Equatable, Sendable {
    public var attention: AttentionKind
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    /// Attention heads of the MHA baseline; the other kinds derive theirs from it (see ``attentionLayer()``).
    public var heads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var tiedEmbeddings: Bool
    public var ropeTheta: Double
    public var normEpsilon: Float
    /// CCA ablations: 0, 1 or 2 convolutions, QK-mean and value shift.
    public var convolutions: Int
    public var qkMean: Bool
    public var valueShift: Bool

    public init(attention: AttentionKind, vocabSize: Int = 256, hiddenSize: Int, layers: Int, heads: Int,
                headDim: Int, intermediateSize: Int, tiedEmbeddings: Bool = true, ropeTheta: Double = 10_000,
                normEpsilon: Float = 1e-6, convolutions: Int = 2, qkMean: Bool = true, valueShift: Bool = true) {
        (self.attention, self.vocabSize, self.hiddenSize, self.layers) = (attention, vocabSize, hiddenSize, layers)
        (self.heads, self.headDim, self.intermediateSize, self.tiedEmbeddings) = (heads, headDim, intermediateSize, tiedEmbeddings)
        (self.ropeTheta, self.normEpsilon) = (ropeTheta, normEpsilon)
        (self.convolutions, self.qkMean, self.valueShift) = (convolutions, qkMean, valueShift)
    }

    /// `tiny`: for tests (E = 32, 2 layers). `small`: a CPU run of a few minutes (E = 128, 4 layers).
    public enum Preset: String, Codable, CaseIterable, Sendable { case tiny, small }

    public static func preset(_ preset: Preset, attention: AttentionKind) -> LanguageModelConfig {
        switch preset {
        case .tiny: LanguageModelConfig(attention: attention, hiddenSize: 32, layers: 2, heads: 4, headDim: 8, intermediateSize: 64)
        case .small: LanguageModelConfig(attention: attention, hiddenSize: 128, layers: 4, heads: 8, headDim: 16, intermediateSize: 256)
        }
    }

    /// Per kind, from the MHA head layout (H heads of d): GQA shares KV heads in pairs; MLA compresses
    /// queries to E/2 and keys/values to E/4 with a d/2 rotary key; CCA uses H/2 latent heads (C = 2) with
    /// half RoPE as in ZAYA1; CCGQA H/2 query and H/4 KV heads (Cq = 2, Ckv = 4).
    public func attentionLayer() -> AttentionLayerConfig {
        let (e, h, d) = (hiddenSize, heads, headDim)
        switch attention {
        case .mha: return .mha(GQAConfig(hiddenSize: e, queryHeads: h, keyValueHeads: h, headDim: d,
                                         rope: RoPEConfig(theta: ropeTheta, fraction: 1)))
        case .gqa: return .gqa(GQAConfig(hiddenSize: e, queryHeads: h, keyValueHeads: max(1, h / 2), headDim: d,
                                         rope: RoPEConfig(theta: ropeTheta, fraction: 1)))
        case .mla: return .mla(MLAConfig(hiddenSize: e, heads: h, queryRank: e / 2, keyValueRank: e / 4, noPEHeadDim: d,
                                         ropeHeadDim: d / 2, valueHeadDim: d, ropeTheta: ropeTheta, normEpsilon: normEpsilon))
        case .cca, .ccgqa:
            let queryHeads = max(1, h / 2), keyValueHeads = attention == .cca ? queryHeads : max(1, h / 4)
            return .cca(CCAConfig(hiddenSize: e, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: d,
                                  rope: RoPEConfig(theta: ropeTheta, fraction: 0.5), temperature: .linear,
                                  convolutions: convolutions, qkMean: qkMean, valueShift: valueShift))
        }
    }

    /// Every parameter name and shape.
    public var parameterShapes: [String: [Int]] {
        var shapes: [String: [Int]] = ["embed_tokens.weight": [vocabSize, hiddenSize], "norm.weight": [hiddenSize]]
        if !tiedEmbeddings { shapes["lm_head.weight"] = [vocabSize, hiddenSize] }
        let attentionShapes = attentionLayer().weightShapes
        let mlpShapes = SwiGLU<Float>.weightShapes(hiddenSize: hiddenSize, intermediateSize: intermediateSize)
        for layer in 0..<layers {
            let prefix = "layers.\(layer)."
            shapes[prefix + "input_layernorm.weight"] = [hiddenSize]
            shapes[prefix + "post_attention_layernorm.weight"] = [hiddenSize]
            for (name, shape) in attentionShapes { shapes[prefix + "self_attn." + name] = shape }
            for (name, shape) in mlpShapes { shapes[prefix + "mlp." + name] = shape }
        }
        return shapes
    }

    public var parameterCount: Int { parameterShapes.values.reduce(0) { $0 + $1.reduce(1, *) } }

    /// This config with the MLP width chosen so the total parameter count is as close as possible to
    /// `target` (attention kinds differ in attention parameters; the MLP absorbs the difference).
    public func matchingParameterCount(_ target: Int) -> LanguageModelConfig {
        var matched = self
        let perUnit = 3 * hiddenSize * layers
        let withoutMLP = parameterCount - perUnit * intermediateSize
        matched.intermediateSize = max(1, Int((Double(target - withoutMLP) / Double(perUnit)).rounded()))
        return matched
    }

    /// Throws a ``ConfigError`` when a setting cannot work.
    public func validate() throws {
        try ConfigError.requirePositive(["vocab_size": vocabSize, "hidden_size": hiddenSize, "layers": layers,
                                         "heads": heads, "head_dim": headDim, "intermediate_size": intermediateSize])
        try ConfigLimits.requireDimensions(["vocab_size": vocabSize, "hidden_size": hiddenSize, "heads": heads,
                                            "head_dim": headDim, "intermediate_size": intermediateSize])
        // Each layer adds its weights by name, so the count is held to what a model can sensibly have.
        guard layers <= 4096 else { throw ConfigError.invalidValue(name: "layers", value: "\(layers)", expected: "at most 4096") }
        guard normEpsilon.isFinite, normEpsilon > 0 else {
            throw ConfigError.invalidValue(name: "norm_epsilon", value: "\(normEpsilon)", expected: "a small positive number such as 1e-6")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw ConfigError.invalidValue(name: "rope_theta", value: "\(ropeTheta)", expected: "a positive number")
        }
        try attentionLayer().validate()
        let total = try ConfigLimits.requireTensorSizes(parameterShapes)
        guard total <= ConfigLimits.maxTensorElements else {
            throw ConfigError.invalidValue(name: "parameter count", value: "\(total)", expected: "at most \(ConfigLimits.maxTensorElements)")
        }
    }
}
