/// How the learned per-KV-head key temperature is applied after the QK normalisation.
public enum TemperatureMode: String, Sendable, Codable, CaseIterable {
    /// `k · temp[j]`, as in the ZAYA1 checkpoints.
    case linear
    /// `k · exp(temp[j])`, as in the report's listing.
    case exp
}

/// Configuration of a CCA layer; CCGQA when `queryHeads > keyValueHeads`.
///
/// The latent widths are `eq = queryHeads · headDim` and `ek = keyValueHeads · headDim`; the compression
/// factors are `E / eq` and `E / ek`.
public struct CCAConfig: AttentionConfig, Codable, Equatable {
    public var hiddenSize: Int
    public var queryHeads: Int
    public var keyValueHeads: Int
    public var headDim: Int
    public var rope: RoPEConfig
    public var temperature: TemperatureMode
    /// Number of causal convolutions on q/k: 2 (depthwise then grouped, the default), 1 (depthwise only) or 0.
    public var convolutions: Int
    /// Adds the parameter-free QK-mean of the pre-convolution latents to q and k.
    public var qkMean: Bool
    /// Gives the second half of the value channels the previous token's projection.
    public var valueShift: Bool
    /// Keys a query sees at most, itself included (ZAYA's `hybrid_sliding` layers); nil: every earlier key.
    public var slidingWindow: Int?

    /// The defaults are ZAYA1-8B's attention: E = 2048, Hq = 8, Hkv = 2, d = 128, RoPE 0.5 at theta 5e6.
    public init(hiddenSize: Int = 2048, queryHeads: Int = 8, keyValueHeads: Int = 2, headDim: Int = 128,
                rope: RoPEConfig = RoPEConfig(), temperature: TemperatureMode = .linear,
                convolutions: Int = 2, qkMean: Bool = true, valueShift: Bool = true, slidingWindow: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.queryHeads = queryHeads
        self.keyValueHeads = keyValueHeads
        self.headDim = headDim
        self.rope = rope
        self.temperature = temperature
        self.convolutions = convolutions
        self.qkMean = qkMean
        self.valueShift = valueShift
        self.slidingWindow = slidingWindow
    }

    public var queryWidth: Int { queryHeads * headDim }
    public var keyWidth: Int { keyValueHeads * headDim }
    /// Channels the convolutions act on: `eq + ek`.
    public var convolutionChannels: Int { queryWidth + keyWidth }
    public var groupSize: Int { queryHeads / keyValueHeads }

    /// Throws a ``ConfigError`` naming the first setting that cannot work.
    public func validate() throws {
        try ConfigError.requirePositive(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                         "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireDimensions(["hidden_size": hiddenSize, "num_attention_heads": queryHeads,
                                            "num_key_value_heads": keyValueHeads, "head_dim": headDim])
        try ConfigLimits.requireTensorSizes(weightShapes)
        guard queryHeads % keyValueHeads == 0 else {
            throw ConfigError.headsDoNotDivide(queryHeads: queryHeads, keyValueHeads: keyValueHeads)
        }
        guard (0...2).contains(convolutions) else { throw ConfigError.convolutionCount(convolutions) }
        guard keyWidth % 2 == 0 else { throw ConfigError.oddValueWidth(valueWidth: keyWidth) }
        if let slidingWindow { try ConfigError.requirePositive(["sliding_window": slidingWindow]) }
        _ = try rope.embedding(headDim: headDim)
    }

    public var kindName: String { "cca" }

    /// Names as in the transformers ZAYA attention module; the convolutions' weights only where they run.
    public var weightShapes: [String: [Int]] {
        let (e, eq, ek, ct, d) = (hiddenSize, queryWidth, keyWidth, convolutionChannels, headDim)
        var shapes: [String: [Int]] = [
            "qkv_proj.q_proj.weight": [eq, e],
            "qkv_proj.k_proj.weight": [ek, e],
            "qkv_proj.v_proj_current.weight": [ek / 2, e],
            "qkv_proj.v_proj_delayed.weight": [ek / 2, e],
            "qk_norm.temp": [keyValueHeads],
            "o_proj.weight": [e, eq],
        ]
        if convolutions >= 1 {
            shapes["qkv_proj.conv_qk_depthwise.weight"] = [ct, 1, 2]
            shapes["qkv_proj.conv_qk_depthwise.bias"] = [ct]
        }
        if convolutions == 2 {
            shapes["qkv_proj.conv_qk_grouped.weight"] = [ct, d, 2]
            shapes["qkv_proj.conv_qk_grouped.bias"] = [ct]
        }
        return shapes
    }

    /// Random weights: temperatures near 1 (`linear`) or near 0 (`exp`), convolutions with PyTorch's
    /// `Conv1d` scale `1/sqrt(in-channels per group × kernel)` for weight and bias, linears with `1/sqrt(in)`.
    public func initialWeights(seed: UInt64) throws -> [String: Tensor<Float>] {
        try validate()
        return randomWeights(weightShapes, seed: seed) { name, shape, seed in
            if name == "qk_norm.temp" {
                let temp = Tensor<Float>(randomNormal: shape, std: 0.1, seed: seed)
                return temperature == .linear ? Tensor(checked: shape, temp.storage.map { $0 + 1 }) : temp
            }
            guard name.hasPrefix("qkv_proj.conv") else { return nil }
            let fanIn = name.contains("depthwise") ? 2 : 2 * headDim
            return Tensor(randomNormal: shape, std: 1 / Float(fanIn).squareRoot(), seed: seed)
        }
    }

    public func makeLayer<S: TensorScalar>(weights: [String: Tensor<S>]) throws -> any AttentionLayer<S> {
        try CCA(config: self, weights: weights)
    }

    public var fileMembers: [(String, JSONValue)] {
        [("attention", .string(kindName))] + headMembers(hiddenSize, queryHeads, keyValueHeads, headDim) + rope.fileMembers
            + [("temperature", .string(temperature.rawValue)), ("cca_convolutions", .integer(convolutions)),
               ("cca_qk_mean", .bool(qkMean)), ("cca_value_shift", .bool(valueShift))]
    }
}
