/// The configuration of a ZAYA model (`ZayaForCausalLM`), under the keys of its Hugging Face `config.json`.
///
/// The defaults are transformers' `ZayaConfig` defaults, which are ZAYA1-8B: 40 layers of E = 2048, CCGQA
/// with 8 query and 2 KV latent heads of 128, partial RoPE 0.5 at theta 5e6, 16 experts of 2048 with top-1
/// routing and a skip expert, a vocabulary of 262272. Read a file with ``init(contentsOf:)``; keys it does
/// not set keep these defaults, keys this model does not use are ignored.
public struct ZayaConfig: Codable, Equatable, Sendable {
    /// A layer's kind: full causal attention, or attention over a sliding window of ``slidingWindow`` keys.
    public enum LayerType: String, Codable, Sendable, CaseIterable {
        case hybrid
        case hybridSliding = "hybrid_sliding"
        /// The names the first converted checkpoints used for the same two kinds.
        case fullAttention = "full_attention"
        case slidingAttention = "sliding_attention"

        public var isSliding: Bool { self == .hybridSliding || self == .slidingAttention }
    }

    /// One layer type's rotary embedding, as `rope_parameters` writes it.
    public struct RoPEParameters: Codable, Equatable, Sendable {
        /// Only `default` (plain RoPE) is supported.
        public var ropeType: String
        public var ropeTheta: Double
        public var partialRotaryFactor: Double

        public init(ropeType: String = "default", ropeTheta: Double, partialRotaryFactor: Double = 1) {
            (self.ropeType, self.ropeTheta, self.partialRotaryFactor) = (ropeType, ropeTheta, partialRotaryFactor)
        }

        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type", ropeTheta = "rope_theta", partialRotaryFactor = "partial_rotary_factor"
        }
    }

    public var vocabSize = 262_272
    public var hiddenSize = 2048
    public var hiddenLayers = 40
    public var attentionHeads = 8
    public var keyValueHeads = 2
    public var headDim = 128
    /// The experts' activation; only `silu` (SwiGLU experts) is supported.
    public var hiddenActivation = "silu"
    public var rmsNormEpsilon = 1e-5
    public var tieWordEmbeddings = true
    /// RoPE settings by layer type.
    public var ropeParameters: [String: RoPEParameters] = [
        LayerType.hybrid.rawValue: RoPEParameters(ropeTheta: 5_000_000, partialRotaryFactor: 0.5),
        LayerType.hybridSliding.rawValue: RoPEParameters(ropeTheta: 10_000, partialRotaryFactor: 0.5),
    ]
    /// Keys a sliding layer's query sees, itself included.
    public var slidingWindow: Int?
    public var moeIntermediateSize = 2048
    /// Only 1 is supported, as in transformers.
    public var expertsPerToken = 1
    public var experts = 16
    /// One per layer; all `hybrid` when the file has none.
    public var layerTypes: [LayerType]?
    /// Biases on the attention projections; not supported (ZAYA1 has none).
    public var attentionBias = false
    public var lmHeadBias = false
    public var routerHiddenSize = 256
    /// The two CCA convolutions' kernel sizes; only 2 and 2 are supported.
    public var ccaTime0 = 2, ccaTime1 = 2
    public var maxPositionEmbeddings = 131_072
    public var padTokenID: Int? = 0
    public var bosTokenID: Int? = 2
    public var eosTokenIDs: [Int] = [106]

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", hiddenLayers = "num_hidden_layers"
        case attentionHeads = "num_attention_heads", keyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case hiddenActivation = "hidden_act", rmsNormEpsilon = "rms_norm_eps", tieWordEmbeddings = "tie_word_embeddings"
        case ropeParameters = "rope_parameters", slidingWindow = "sliding_window"
        case moeIntermediateSize = "moe_intermediate_size", expertsPerToken = "num_experts_per_tok", experts = "num_experts"
        case layerTypes = "layer_types", attentionBias = "attention_bias", lmHeadBias = "lm_head_bias"
        case routerHiddenSize = "router_hidden_size", ccaTime0 = "cca_time0", ccaTime1 = "cca_time1"
        case maxPositionEmbeddings = "max_position_embeddings"
        case padTokenID = "pad_token_id", bosTokenID = "bos_token_id", eosTokenIDs = "eos_token_id"
    }

    /// ZAYA1-8B's configuration.
    public init() {}

    /// The configuration in the `config.json` at `path`, validated.
    /// - Throws: ``ConfigFileError`` for a malformed file or key, ``ZayaError`` for a setting this
    ///   implementation cannot run, ``ConfigError`` for an attention setting that cannot work.
    public init(contentsOf path: String) throws {
        let bytes: [UInt8]
        do { bytes = try readFile(path) } catch { throw ConfigFileError.unreadable(path: path, reason: "\(error)") }
        try self.init(reading: KeyReader(jsonBytes: bytes, source: path))
    }

    /// The configuration in JSON text (a `config.json`'s contents); `source` names it in errors.
    public init(jsonText: String, source: String = "config.json") throws {
        try self.init(reading: KeyReader(jsonBytes: Array(jsonText.utf8), source: source))
    }

    init(reading file: KeyReader) throws {
        if let legacy = Self.legacyKeys.first(where: { file.keys[$0] != nil }) {
            throw ZayaError.legacyConfig(file: file.source, key: legacy)
        }
        let modelType = try file.string("model_type", default: "zaya")
        guard modelType == "zaya" else { throw ZayaError.notZaya(file: file.source, modelType: modelType) }
        func key(_ key: CodingKeys) -> String { key.stringValue }
        vocabSize = try file.integer(key(.vocabSize), default: vocabSize)
        hiddenSize = try file.integer(key(.hiddenSize), default: hiddenSize)
        hiddenLayers = try file.integer(key(.hiddenLayers), default: hiddenLayers)
        attentionHeads = try file.integer(key(.attentionHeads), default: attentionHeads)
        keyValueHeads = try file.integer(key(.keyValueHeads), default: keyValueHeads)
        headDim = try file.optionalInteger(key(.headDim)) ?? hiddenSize / max(1, attentionHeads)
        hiddenActivation = try file.string(key(.hiddenActivation), default: hiddenActivation)
        rmsNormEpsilon = try file.number(key(.rmsNormEpsilon), default: rmsNormEpsilon)
        tieWordEmbeddings = try file.bool(key(.tieWordEmbeddings), default: tieWordEmbeddings)
        if let rope = try file.object(key(.ropeParameters)) { ropeParameters = try Self.ropeParameters(rope) }
        slidingWindow = try file.optionalInteger(key(.slidingWindow))
        moeIntermediateSize = try file.integer(key(.moeIntermediateSize), default: moeIntermediateSize)
        expertsPerToken = try file.integer(key(.expertsPerToken), default: expertsPerToken)
        experts = try file.integer(key(.experts), default: experts)
        layerTypes = try file.strings(key(.layerTypes)).map { names in
            try names.map { name in
                guard let type = LayerType(rawValue: name) else {
                    throw ConfigError.invalidValue(name: "layer_types", value: name,
                                                   expected: LayerType.allCases.map(\.rawValue).joined(separator: ", "))
                }
                return type
            }
        }
        attentionBias = try file.bool(key(.attentionBias), default: attentionBias)
        lmHeadBias = try file.bool(key(.lmHeadBias), default: lmHeadBias)
        routerHiddenSize = try file.integer(key(.routerHiddenSize), default: routerHiddenSize)
        ccaTime0 = try file.integer(key(.ccaTime0), default: ccaTime0)
        ccaTime1 = try file.integer(key(.ccaTime1), default: ccaTime1)
        maxPositionEmbeddings = try file.integer(key(.maxPositionEmbeddings), default: maxPositionEmbeddings)
        padTokenID = try file.optionalInteger(key(.padTokenID))
        bosTokenID = try file.optionalInteger(key(.bosTokenID))
        eosTokenIDs = try file.integers(key(.eosTokenIDs))
        try validate(source: file.source)
    }

    /// `rope_parameters`: one entry per layer type, or one flat entry for all of them. A stray top-level
    /// `rope_type` next to the per-type entries (as some published configs have) is ignored, as transformers ignores it.
    static func ropeParameters(_ object: KeyReader) throws -> [String: RoPEParameters] {
        func parameters(_ entry: KeyReader) throws -> RoPEParameters {
            guard let theta = try entry.optionalNumber(RoPEParameters.CodingKeys.ropeTheta.stringValue) else {
                throw ConfigFileError.wrongType(path: entry.source, key: "rope_theta", expected: "a number (it is missing)")
            }
            return RoPEParameters(ropeType: try entry.string("rope_type", default: "default"), ropeTheta: theta,
                                  partialRotaryFactor: try entry.number("partial_rotary_factor", default: 1))
        }
        if object.keys["rope_theta"] != nil {
            let flat = try parameters(object)
            return Dictionary(uniqueKeysWithValues: LayerType.allCases.map { ($0.rawValue, flat) })
        }
        var result: [String: RoPEParameters] = [:]
        for name in object.keys.keys where name != "rope_type" {
            result[name] = try parameters(try object.object(name)!)
        }
        return result
    }

    /// Config keys of the original alternating-layer (Megatron-style) checkpoints.
    static let legacyKeys = ["zaya_use_eda", "zaya_use_mod", "swa_layers", "num_query_groups", "ffn_hidden_size"]

    /// Every layer's type.
    public var resolvedLayerTypes: [LayerType] { layerTypes ?? Array(repeating: .hybrid, count: hiddenLayers) }

    /// The attention of a layer of `type`: CCGQA with that type's RoPE and, for sliding layers, the window.
    public func attention(_ type: LayerType) throws -> CCAConfig {
        guard let rope = ropeParameters[type.rawValue] else { throw ZayaError.missingRoPE(layerType: type.rawValue) }
        var config = CCAConfig(hiddenSize: hiddenSize, queryHeads: attentionHeads, keyValueHeads: keyValueHeads, headDim: headDim,
                               rope: RoPEConfig(theta: rope.ropeTheta, fraction: rope.partialRotaryFactor), temperature: .linear)
        config.slidingWindow = type.isSliding ? slidingWindow : nil
        return config
    }

    /// Throws the first setting that cannot run here; `source` names the file in the message.
    public func validate(source: String = "config.json") throws {
        try ConfigError.requirePositive([
            "vocab_size": vocabSize, "hidden_size": hiddenSize, "num_hidden_layers": hiddenLayers,
            "moe_intermediate_size": moeIntermediateSize, "num_experts": experts, "router_hidden_size": routerHiddenSize,
        ])
        func unsupported(_ key: String, _ value: String, _ supported: String) -> ZayaError {
            ZayaError.unsupported(file: source, key: key, value: value, supported: supported)
        }
        guard hiddenActivation == "silu" else { throw unsupported("hidden_act", hiddenActivation, "silu") }
        guard expertsPerToken == 1 else { throw unsupported("num_experts_per_tok", "\(expertsPerToken)", "1") }
        guard !attentionBias else { throw unsupported("attention_bias", "true", "false") }
        guard ccaTime0 == 2, ccaTime1 == 2 else { throw unsupported("cca_time0, cca_time1", "\(ccaTime0), \(ccaTime1)", "2, 2") }
        let types = resolvedLayerTypes
        guard types.count == hiddenLayers else {
            throw ConfigError.invalidValue(name: "layer_types", value: "\(types.count) entries",
                                           expected: "one per layer (num_hidden_layers = \(hiddenLayers))")
        }
        if types.contains(where: \.isSliding) {
            guard let window = slidingWindow, window > 0 else {
                throw ConfigError.invalidValue(name: "sliding_window", value: slidingWindow.map(String.init) ?? "null",
                                               expected: "a positive number of keys, since layer_types has sliding layers")
            }
        }
        for type in Set(types) {
            let rope = ropeParameters[type.rawValue]
            guard rope?.ropeType ?? "default" == "default" else { throw unsupported("rope_parameters.\(type.rawValue).rope_type", rope!.ropeType, "default") }
            try attention(type).validate()
        }
    }
}

/// A ZAYA checkpoint this implementation does not run.
public enum ZayaError: Error, CustomStringConvertible, Equatable {
    case notZaya(file: String, modelType: String)
    case legacyConfig(file: String, key: String)
    case legacyWeights(directory: String, tensor: String)
    case unsupported(file: String, key: String, value: String, supported: String)
    case missingRoPE(layerType: String)

    public var description: String {
        switch self {
        case let .notZaya(file, modelType):
            return "\(file) describes a '\(modelType)' model, not ZAYA (model_type must be \"zaya\")"
        case let .legacyConfig(file, key):
            return "\(file) is an original alternating-layer (Megatron-style) ZAYA config (it has '\(key)'); "
                + Self.conversionAdvice
        case let .legacyWeights(directory, tensor):
            return "the weights in \(directory) use the original alternating-layer (Megatron-style) ZAYA names (e.g. '\(tensor)'); "
                + Self.conversionAdvice
        case let .unsupported(file, key, value, supported):
            return "\(file): \(key) = \(value) is not supported here (supported: \(supported))"
        case let .missingRoPE(layerType):
            return "rope_parameters has no entry for layer type '\(layerType)'; add one (rope_type, rope_theta, partial_rotary_factor)"
        }
    }

    static let conversionAdvice = "convert the checkpoint to the transformers layout (ZayaForCausalLM names) with transformers' models/zaya/convert_zaya_weights_to_hf.py"
}
