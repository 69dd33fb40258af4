/// A layer configuration read from a JSON file, as `cca forward` takes it.
///
/// Keys (transformers naming): `attention` (`mha`|`gqa`|`mla`|`cca`), `hidden_size`, `num_attention_heads`,
/// `num_key_value_heads`, `head_dim`, `rope_theta`, `partial_rotary_factor`, `temperature` (`linear`|`exp`);
/// for MLA `q_lora_rank`, `kv_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`; for CCA's
/// ablations `cca_convolutions` (0, 1, 2), `cca_qk_mean`, `cca_value_shift`. Missing keys take the ZAYA1
/// defaults (E = 2048, Hq = 8, Hkv = 2, d = 128, theta 5e6, RoPE fraction 0.5, linear temperature);
/// unknown keys are an error, so a misspelt key never silently falls back to a default.
public enum LayerConfigFile {
    static let knownKeys: Set<String> = [
        "attention", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "rope_theta",
        "partial_rotary_factor", "temperature", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
        "qk_rope_head_dim", "v_head_dim", "cca_convolutions", "cca_qk_mean", "cca_value_shift",
    ]

    /// Config files are a few hundred bytes; anything far larger is the wrong file and is not read.
    static let maxFileBytes = 1 << 20

    /// Reads and validates a JSON configuration file.
    public static func load(path: String) throws -> any AttentionConfig {
        let bytes: [UInt8]
        do { bytes = try readFile(path, limit: maxFileBytes) } catch let error as FileIOError {
            throw ConfigFileError.unreadable(path: path, reason: error.reason)
        }
        return try parse(jsonBytes: bytes, source: path)
    }

    /// Builds a configuration from JSON text; `source` names it in errors.
    public static func parse(jsonText: String, source: String = "config") throws -> any AttentionConfig {
        try parse(jsonBytes: Array(jsonText.utf8), source: source)
    }

    /// Builds a configuration from the bytes of a JSON file; `source` names it in errors.
    public static func parse(jsonBytes: [UInt8], source: String) throws -> any AttentionConfig {
        let reader = try KeyReader(jsonBytes: jsonBytes, source: source)
        if let unknown = reader.keys.keys.filter({ !knownKeys.contains($0) }).sorted().first {
            throw ConfigFileError.unknownKey(path: source, key: unknown, known: knownKeys.sorted())
        }
        let hidden = try reader.integer("hidden_size", default: 2048)
        let queryHeads = try reader.integer("num_attention_heads", default: 8)
        let keyValueHeads = try reader.integer("num_key_value_heads", default: 2)
        let headDim = try reader.integer("head_dim", default: 128)
        let rope = RoPEConfig(theta: try reader.number("rope_theta", default: 5_000_000),
                              fraction: try reader.number("partial_rotary_factor", default: 0.5))
        let config: any AttentionConfig
        switch try reader.string("attention", default: "cca") {
        case "mha":
            config = GQAConfig.mha(hiddenSize: hidden, heads: queryHeads, headDim: headDim, rope: rope)
        case "gqa":
            config = GQAConfig(hiddenSize: hidden, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: headDim, rope: rope)
        case "mla":
            config = MLAConfig(hiddenSize: hidden, heads: queryHeads,
                                  queryRank: try reader.integer("q_lora_rank", default: hidden / 2),
                                  keyValueRank: try reader.integer("kv_lora_rank", default: hidden / 8),
                                  noPEHeadDim: try reader.integer("qk_nope_head_dim", default: headDim),
                                  ropeHeadDim: try reader.integer("qk_rope_head_dim", default: headDim / 2),
                                  valueHeadDim: try reader.integer("v_head_dim", default: headDim), ropeTheta: rope.theta)
        case "cca":
            let temperatureName = try reader.string("temperature", default: "linear")
            guard let temperature = TemperatureMode(rawValue: temperatureName) else {
                throw ConfigError.invalidValue(name: "temperature", value: temperatureName, expected: "linear or exp")
            }
            config = CCAConfig(hiddenSize: hidden, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: headDim,
                                  rope: rope, temperature: temperature,
                                  convolutions: try reader.integer("cca_convolutions", default: 2),
                                  qkMean: try reader.bool("cca_qk_mean", default: true),
                                  valueShift: try reader.bool("cca_value_shift", default: true))
        case let other:
            throw ConfigError.unknownAttention(other)
        }
        try config.validate()
        return config
    }
}

extension AttentionConfig {
    /// The config as the JSON file ``LayerConfigFile/load(path:)`` reads, with every key the kind uses written out.
    public var fileJSON: [UInt8] { Array(JSONValue.object(fileMembers).prettyText().utf8) }
}

/// The file keys every kind with query and key/value heads writes.
func headMembers(_ hidden: Int, _ queryHeads: Int, _ keyValueHeads: Int, _ headDim: Int) -> [(String, JSONValue)] {
    [("hidden_size", .integer(hidden)), ("num_attention_heads", .integer(queryHeads)),
     ("num_key_value_heads", .integer(keyValueHeads)), ("head_dim", .integer(headDim))]
}

extension RoPEConfig {
    /// The file keys of these RoPE settings.
    var fileMembers: [(String, JSONValue)] {
        [("rope_theta", .number("\(theta)")), ("partial_rotary_factor", .number("\(fraction)"))]
    }
}

/// A configuration file that cannot be read.
public enum ConfigFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notJSON(path: String, reason: String)
    case notAnObject(path: String)
    case unknownKey(path: String, key: String, known: [String])
    case wrongType(path: String, key: String, expected: String)
    case duplicateKey(path: String, key: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .notJSON(path, reason): return "\(path) is not valid JSON: \(reason)"
        case let .notAnObject(path): return "\(path) must hold a JSON object of config keys"
        case let .unknownKey(path, key, known):
            return "\(path): unknown key '\(key)'; known keys: \(known.joined(separator: ", "))"
        case let .wrongType(path, key, expected): return "\(path): '\(key)' must be \(expected)"
        case let .duplicateKey(path, key): return "\(path): '\(key)' is given twice"
        }
    }
}
