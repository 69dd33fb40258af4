/// The shapes `cca cost`, the benchmarks and the tour compare: one latent head width `d` everywhere,
/// `E/d` heads for MHA, and the given group size and compression factors for the others.
public struct ComparisonShapes: Sendable {
    public var hiddenSize: Int
    public var headDim: Int
    /// GQA group size G (query heads per KV head).
    public var gqaGroup: Int
    /// CCA compression C (`Hq = Hkv = E/(C·d)`).
    public var ccaCompression: Int
    /// CCGQA query and KV compression (`Hq = E/(Cq·d)`, `Hkv = E/(Ckv·d)`).
    public var ccgqaQueryCompression: Int, ccgqaKeyValueCompression: Int
    /// MLA compression of `c_q` and `c_kv` (`dq = E/c_q`, `dc = E/c_kv`) and its RoPE key width.
    public var mlaQueryCompression: Int, mlaKeyValueCompression: Int, mlaRopeDim: Int
    public var rope: RoPEConfig

    /// Defaults: the report's comparison at ZAYA1 width (E = 2048, d = 128): GQA G = 4, CCA C = 4,
    /// CCGQA Cq = 2 / Ckv = 8, MLA c_q = 2 / c_kv = 8 with a 64-wide RoPE key.
    public init(hiddenSize: Int = 2048, headDim: Int = 128, gqaGroup: Int = 4, ccaCompression: Int = 4,
                ccgqaQueryCompression: Int = 2, ccgqaKeyValueCompression: Int = 8,
                mlaQueryCompression: Int = 2, mlaKeyValueCompression: Int = 8, mlaRopeDim: Int = 64,
                rope: RoPEConfig = RoPEConfig()) {
        self.hiddenSize = hiddenSize
        self.headDim = headDim
        self.gqaGroup = gqaGroup
        self.ccaCompression = ccaCompression
        self.ccgqaQueryCompression = ccgqaQueryCompression
        self.ccgqaKeyValueCompression = ccgqaKeyValueCompression
        self.mlaQueryCompression = mlaQueryCompression
        self.mlaKeyValueCompression = mlaKeyValueCompression
        self.mlaRopeDim = mlaRopeDim
        self.rope = rope
    }

    var heads: Int { hiddenSize / headDim }

    /// Throws a ``ConfigError`` when a size is not positive, too large, or E is not a whole number of heads;
    /// the per-method configs are checked when they are built.
    public func validate() throws {
        let sizes: KeyValuePairs<String, Int> = [
            "hidden size E": hiddenSize, "head dimension d": headDim, "GQA group size": gqaGroup, "CCA compression": ccaCompression,
            "CCGQA query compression": ccgqaQueryCompression, "CCGQA key/value compression": ccgqaKeyValueCompression,
            "MLA query compression": mlaQueryCompression, "MLA key/value compression": mlaKeyValueCompression, "MLA RoPE width": mlaRopeDim,
        ]
        try ConfigError.requirePositive(sizes)
        try ConfigLimits.requireDimensions(sizes)
        guard hiddenSize % headDim == 0 else {
            throw ConfigError.invalidValue(name: "hidden size E", value: "\(hiddenSize)",
                                           expected: "a multiple of the head dimension d = \(headDim), so that E/d heads are whole")
        }
    }

    /// Heads for a latent of width `E / compression`, or a config error when it is not whole.
    private func latentHeads(_ compression: Int, _ name: String) throws -> Int {
        try validate()
        guard compression > 0, hiddenSize % (compression * headDim) == 0 else {
            throw ConfigError.invalidValue(name: name, value: "\(compression)",
                                           expected: "a factor C with E/(C·d) = \(hiddenSize)/(C·\(headDim)) a whole number of heads")
        }
        return hiddenSize / (compression * headDim)
    }

    public func gqa() throws -> GQAConfig {
        try validate()
        guard gqaGroup > 0, heads % gqaGroup == 0 else {
            throw ConfigError.invalidValue(name: "gqa group", value: "\(gqaGroup)", expected: "a divisor of the \(heads) heads")
        }
        return GQAConfig(hiddenSize: hiddenSize, queryHeads: heads, keyValueHeads: heads / gqaGroup, headDim: headDim, rope: rope)
    }

    public func mha() throws -> GQAConfig {
        var config = try gqa()
        config.keyValueHeads = config.queryHeads
        return config
    }

    public func mla() throws -> MLAConfig {
        try validate()
        guard hiddenSize % mlaQueryCompression == 0, hiddenSize % mlaKeyValueCompression == 0 else {
            throw ConfigError.invalidValue(name: "mla compression", value: "\(mlaQueryCompression)/\(mlaKeyValueCompression)",
                                           expected: "divisors of E = \(hiddenSize)")
        }
        return MLAConfig(hiddenSize: hiddenSize, heads: heads, queryRank: hiddenSize / mlaQueryCompression,
                         keyValueRank: hiddenSize / mlaKeyValueCompression, noPEHeadDim: headDim,
                         ropeHeadDim: mlaRopeDim, valueHeadDim: headDim, ropeTheta: rope.theta)
    }

    public func cca() throws -> CCAConfig {
        let h = try latentHeads(ccaCompression, "cca compression")
        return CCAConfig(hiddenSize: hiddenSize, queryHeads: h, keyValueHeads: h, headDim: headDim, rope: rope)
    }

    public func ccgqa() throws -> CCAConfig {
        CCAConfig(hiddenSize: hiddenSize, queryHeads: try latentHeads(ccgqaQueryCompression, "ccgqa query compression"),
                  keyValueHeads: try latentHeads(ccgqaKeyValueCompression, "ccgqa key/value compression"),
                  headDim: headDim, rope: rope)
    }

    /// The configuration of `method` at these shapes.
    public func config(_ method: AttentionKind) throws -> any AttentionConfig {
        switch method {
        case .mha: return try mha()
        case .gqa: return try gqa()
        case .mla: return try mla()
        case .cca: return try cca()
        case .ccgqa: return try ccgqa()
        }
    }

    /// The cost of `method` at these shapes.
    public func cost(_ method: AttentionKind) throws -> LayerCost { try config(method).cost }

    /// A layer of `method` at these shapes with random weights.
    public func layer(_ method: AttentionKind, seed: UInt64 = 0) throws -> any AttentionLayer<Float> {
        try config(method).makeLayer(seed: seed)
    }
}
