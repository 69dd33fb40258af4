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
public struct CCAConfig: Sendable, Equatable {
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

    /// The defaults are ZAYA1-8B's attention: E = 2048, Hq = 8, Hkv = 2, d = 128, RoPE 0.5 at theta 5e6.
    public init(hiddenSize: Int = 2048, queryHeads: Int = 8, keyValueHeads: Int = 2, headDim: Int = 128,
                rope: RoPEConfig = RoPEConfig(), temperature: TemperatureMode = .linear,
                convolutions: Int = 2, qkMean: Bool = true, valueShift: Bool = true) {
        self.hiddenSize = hiddenSize
        self.queryHeads = queryHeads
        self.keyValueHeads = keyValueHeads
        self.headDim = headDim
        self.rope = rope
        self.temperature = temperature
        self.convolutions = convolutions
        self.qkMean = qkMean
        self.valueShift = valueShift
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
        try ConfigLimits.requireTensorSizes(CCA.weightShapes(self))
        guard queryHeads % keyValueHeads == 0 else {
            throw ConfigError.headsDoNotDivide(queryHeads: queryHeads, keyValueHeads: keyValueHeads)
        }
        guard (0...2).contains(convolutions) else { throw ConfigError.convolutionCount(convolutions) }
        guard keyWidth % 2 == 0 else { throw ConfigError.oddValueWidth(valueWidth: keyWidth) }
        _ = try rope.embedding(headDim: headDim)
    }
}
