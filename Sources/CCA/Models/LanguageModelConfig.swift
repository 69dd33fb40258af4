
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
    /// Query compression of CCA (its C: `H/C` latent heads), of CCGQA (`Cq`) and of MLA's `c_q`; nil: 2.
    public var queryCompression: Int?
    /// KV-cache compression against MHA: GQA's group size, CCGQA's `Ckv`, MLA's `2E / (dc + dr)`; nil: 2 for
    /// GQA, 4 for CCGQA and MLA.
    public var keyValueCompression: Int?

    public init(attention: AttentionKind, vocabSize: Int = 256, hiddenSize: Int, layers: Int, heads: Int,
                headDim: Int, intermediateSize: Int, tiedEmbeddings: Bool = true, ropeTheta: Double = 10_000,
                normEpsilon: Float = 1e-6, convolutions: Int = 2, qkMean: Bool = true, valueShift: Bool = true,
                queryCompression: Int? = nil, keyValueCompression: Int? = nil) {
        (self.attention, self.vocabSize, self.hiddenSize, self.layers) = (attention, vocabSize, hiddenSize, layers)
        (self.heads, self.headDim, self.intermediateSize, self.tiedEmbeddings) = (heads, headDim, intermediateSize, tiedEmbeddings)
        (self.ropeTheta, self.normEpsilon) = (ropeTheta, normEpsilon)
        (self.convolutions, self.qkMean, self.valueShift) = (convolutions, qkMean, valueShift)
        (self.queryCompression, self.keyValueCompression) = (queryCompression, keyValueCompression)
    }

    /// `micro`: the test suite's learning check (E = 16, 2 layers). `tiny`: seconds on a CPU (E = 32,
    /// 2 layers). `small`: a CPU run of a few minutes (E = 128, 4 layers). For the GPU: `gpt2-small`
    /// (12 layers, E = 768, 12 heads of 64), `gpt2-medium` (24 layers, E = 1024, 16 heads of 64) and `wide`,
    /// the report's width (12 layers, E = 2048, 16 heads of 128, with CCA at C = 4 and CCGQA at Cq = 2,
    /// Ckv = 8 as in ZAYA1).
    public enum Preset: String, Codable, CaseIterable, Sendable {
        case micro, tiny, small
        case gpt2Small = "gpt2-small", gpt2Medium = "gpt2-medium", wide

        /// What a parameter-matched MLP width is rounded to. The GPU-sized presets keep it a multiple of
        /// 32: bfloat16 rows of 64 bytes, where an unaligned width makes cuBLAS leave its fast tensor-core
        /// kernels (an MLP of 7637 made the CCA `wide` model train 2.2x slower than MHA's), while the count
        /// stays within half a percent of MHA's. The small presets match exactly, since one of their MLP
        /// units is a sizeable part of the model.
        public var mlpWidthMultiple: Int {
            switch self {
            case .micro, .tiny, .small: 1
            case .gpt2Small, .gpt2Medium, .wide: 32
            }
        }
    }

    public static func preset(_ preset: Preset, attention: AttentionKind) -> LanguageModelConfig {
        switch preset {
        case .gpt2Small: LanguageModelConfig(attention: attention, hiddenSize: 768, layers: 12, heads: 12, headDim: 64,
                                             intermediateSize: 2048)
        case .gpt2Medium: LanguageModelConfig(attention: attention, hiddenSize: 1024, layers: 24, heads: 16, headDim: 64,
                                              intermediateSize: 2816)
        case .wide: LanguageModelConfig(attention: attention, hiddenSize: 2048, layers: 12, heads: 16, headDim: 128,
                                        intermediateSize: 5632, ropeTheta: 5_000_000, queryCompression: attention == .cca ? 4 : 2,
                                        keyValueCompression: attention == .mla || attention == .ccgqa || attention == .gqa ? 8 : nil)
        case .micro: LanguageModelConfig(attention: attention, hiddenSize: 16, layers: 2, heads: 4, headDim: 4, intermediateSize: 32)
        case .tiny: LanguageModelConfig(attention: attention, hiddenSize: 32, layers: 2, heads: 4, headDim: 8, intermediateSize: 64)
        case .small: LanguageModelConfig(attention: attention, hiddenSize: 128, layers: 4, heads: 8, headDim: 16, intermediateSize: 256)
        }
    }

    /// Per kind, from the MHA head layout (`H` heads of `d`) and the compression factors (defaults in
    /// brackets): GQA shares KV heads in groups of `Ckv` [2]; MLA compresses queries to `E/Cq` [E/2] and its
    /// cache to `2E/Ckv` (a `d/2` rotary key and `c_kv` [E/4]); CCA uses `H/C` latent heads [C = 2] and CCGQA
    /// `H/Cq` query and `H/Ckv` KV heads [2, 4], both with half RoPE as in ZAYA1.
    public func attentionLayer() -> any AttentionConfig {
        let (e, h, d) = (hiddenSize, heads, headDim)
        let query = queryCompression ?? 2
        let keyValue = keyValueCompression ?? (attention == .gqa ? 2 : 4)
        switch attention {
        case .mha: return GQAConfig(hiddenSize: e, queryHeads: h, keyValueHeads: h, headDim: d,
                                    rope: RoPEConfig(theta: ropeTheta, fraction: 1))
        case .gqa: return GQAConfig(hiddenSize: e, queryHeads: h, keyValueHeads: max(1, h / keyValue), headDim: d,
                                    rope: RoPEConfig(theta: ropeTheta, fraction: 1))
        case .mla: return MLAConfig(hiddenSize: e, heads: h, queryRank: e / query,
                                    keyValueRank: keyValueCompression.map { max(1, 2 * e / $0 - d / 2) } ?? e / 4,
                                    noPEHeadDim: d, ropeHeadDim: d / 2, valueHeadDim: d, ropeTheta: ropeTheta, normEpsilon: normEpsilon)
        case .cca, .ccgqa:
            let queryHeads = max(1, h / query), keyValueHeads = attention == .cca ? queryHeads : max(1, h / keyValue)
            return CCAConfig(hiddenSize: e, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: d,
                             rope: RoPEConfig(theta: ropeTheta, fraction: 0.5), temperature: .linear,
                             convolutions: convolutions, qkMean: qkMean, valueShift: valueShift)
        }
    }

    /// Every parameter name and shape.
    public var parameterShapes: [String: [Int]] {
        var shapes: [String: [Int]] = ["embed_tokens.weight": [vocabSize, hiddenSize], "norm.weight": [hiddenSize]]
        if !tiedEmbeddings { shapes["lm_head.weight"] = [vocabSize, hiddenSize] }
        let attentionShapes = attentionLayer().weightShapes
        let mlpShapes = MLP<Float>.weightShapes(hiddenSize: hiddenSize, intermediateSize: intermediateSize)
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
    /// `target` (attention kinds differ in attention parameters; the MLP absorbs the difference), among
    /// the widths that are multiples of `multiple`.
    public func matchingParameterCount(_ target: Int, multipleOf multiple: Int = 1) -> LanguageModelConfig {
        precondition(multiple > 0, "the MLP width multiple must be positive")
        var matched = self
        let perUnit = 3 * hiddenSize * layers
        let withoutMLP = parameterCount - perUnit * intermediateSize
        let units = (Double(target - withoutMLP) / Double(perUnit * multiple)).rounded()
        matched.intermediateSize = max(1, Int(units)) * multiple
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
