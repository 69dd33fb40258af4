/// Configuration of multi-head latent attention (DeepSeek-V2 style).
public struct MLAConfig: Sendable, Equatable {
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
        try ConfigLimits.requireTensorSizes(MLA.weightShapes(self))
        guard normEpsilon.isFinite, normEpsilon > 0 else {
            throw ConfigError.invalidValue(name: "rms_norm_eps", value: "\(normEpsilon)", expected: "a small positive number such as 1e-6")
        }
        _ = try RoPEConfig(theta: ropeTheta, fraction: 1).embedding(headDim: ropeHeadDim)
    }
}

/// Multi-head latent attention as in DeepSeek-V2: queries through a normalised compressed `c_q`, keys and
/// values through a shared normalised `c_kv` and up-projections, plus a decoupled RoPE key of width `dr`
/// shared by all heads. Weight names follow the transformers DeepSeek-V2 module.
public struct MLA: AttentionLayer {
    public let config: MLAConfig
    public let weights: [String: Tensor]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    public static func weightShapes(_ c: MLAConfig) -> [String: [Int]] {[
        "q_a_proj.weight": [c.queryRank, c.hiddenSize],
        "q_a_layernorm.weight": [c.queryRank],
        "q_b_proj.weight": [c.heads * c.queryHeadDim, c.queryRank],
        "kv_a_proj_with_mqa.weight": [c.keyValueRank + c.ropeHeadDim, c.hiddenSize],
        "kv_a_layernorm.weight": [c.keyValueRank],
        "kv_b_proj.weight": [c.heads * (c.noPEHeadDim + c.valueHeadDim), c.keyValueRank],
        "o_proj.weight": [c.hiddenSize, c.heads * c.valueHeadDim],
    ]}

    /// A layer with random weights, reproducible from `seed`; norm weights are drawn near 1.
    public init(config: MLAConfig, seed: UInt64 = 0) throws {
        try config.validate()
        try self.init(config: config, weights: randomWeights(Self.weightShapes(config), seed: seed) { _, shape, seed in
            shape.count == 1 ? try! Tensor(shape: shape, storage: Tensor(randomNormal: shape, std: 0.1, seed: seed).storage.map { $0 + 1 }) : nil
        })
    }

    public init(config: MLAConfig, weights: [String: Tensor]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(Self.weightShapes(config))
        rotary = try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim)
    }

    public func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        let (b, s) = (input.batch, input.length)
        let positions = [Int](repeating: 0, count: b)
        let (k, v) = try expand(latent(input.x, firstPositions: positions))
        let attended = CausalAttention.forward(q: try queries(input.x, firstPositions: positions), k: k, v: v,
                                               scale: attentionScale, keyValid: input.keyValid)
        var y = linear(try attended.reshaped([b, s, config.heads * config.valueHeadDim]), weights["o_proj.weight"]!)
        input.zeroPadded(&y)
        return y
    }

    var attentionScale: Float { 1 / Float(config.queryHeadDim).squareRoot() }

    /// RMSNorm over the first `columns` of every row of width `stride`, with the named weight.
    private func normalized(_ values: Tensor, columns: Int, stride: Int, weight: String) -> Tensor {
        let rows = values.count / stride
        var out = Tensor(zeros: [rows, columns])
        let leading = (0..<rows).flatMap { r in values.storage[(r * stride)..<(r * stride + columns)] }
        leading.withUnsafeBufferPointer { input in
            weights[weight]!.storage.withUnsafeBufferPointer { w in
                out.storage.withUnsafeMutableBufferPointer { o in
                    Normalization.rmsNorm(input.baseAddress!, rows: rows, width: columns, weight: w.baseAddress!,
                                          epsilon: config.normEpsilon, output: o.baseAddress!)
                }
            }
        }
        return out
    }

    /// Queries `[B,S,H,dn+dr]`: `RMSNorm(x·W_dqᵀ)·W_uqᵀ`, RoPE on each head's last `dr` channels.
    func queries(_ x: Tensor, firstPositions: [Int]) throws -> Tensor {
        let (b, s, h, dn, dr) = (x.shape[0], x.shape[1], config.heads, config.noPEHeadDim, config.ropeHeadDim)
        let compressed = normalized(linear(x, weights["q_a_proj.weight"]!), columns: config.queryRank,
                                    stride: config.queryRank, weight: "q_a_layernorm.weight")
        var q = try linear(compressed, weights["q_b_proj.weight"]!).reshaped([b, s, h, dn + dr])
        var rope = Tensor(zeros: [b, s, h, dr])
        for index in 0..<(b * s * h) {
            for i in 0..<dr { rope.storage[index * dr + i] = q.storage[index * (dn + dr) + dn + i] }
        }
        rotary.apply(to: &rope, firstPositions: firstPositions)
        for index in 0..<(b * s * h) {
            for i in 0..<dr { q.storage[index * (dn + dr) + dn + i] = rope.storage[index * dr + i] }
        }
        return q
    }

    /// The cached latent `[B,S,dc+dr]`: `RMSNorm(c_kv)` then the RoPE key shared by all heads.
    func latent(_ x: Tensor, firstPositions: [Int]) throws -> Tensor {
        let (b, s, dc, dr) = (x.shape[0], x.shape[1], config.keyValueRank, config.ropeHeadDim)
        let projected = linear(x, weights["kv_a_proj_with_mqa.weight"]!)
        let compressed = normalized(projected, columns: dc, stride: dc + dr, weight: "kv_a_layernorm.weight")
        var ropeKey = Tensor(zeros: [b, s, 1, dr])
        for row in 0..<(b * s) {
            for i in 0..<dr { ropeKey.storage[row * dr + i] = projected.storage[row * (dc + dr) + dc + i] }
        }
        rotary.apply(to: &ropeKey, firstPositions: firstPositions)
        var rows = Tensor(zeros: [b, s, dc + dr])
        for row in 0..<(b * s) {
            for i in 0..<dc { rows.storage[row * (dc + dr) + i] = compressed.storage[row * dc + i] }
            for i in 0..<dr { rows.storage[row * (dc + dr) + dc + i] = ropeKey.storage[row * dr + i] }
        }
        return rows
    }

    /// Per-head keys `[B,S,H,dn+dr]` and values `[B,S,H,dv]` from the latent: `c_kv·W_ukᵀ ; k_rope` and `c_kv·W_uvᵀ`.
    func expand(_ latent: Tensor) throws -> (k: Tensor, v: Tensor) {
        let (b, s) = (latent.shape[0], latent.shape[1])
        let (h, dn, dr, dv, dc) = (config.heads, config.noPEHeadDim, config.ropeHeadDim, config.valueHeadDim, config.keyValueRank)
        var compressed = Tensor(zeros: [b, s, dc])
        for row in 0..<(b * s) {
            for i in 0..<dc { compressed.storage[row * dc + i] = latent.storage[row * (dc + dr) + i] }
        }
        let keyValue = linear(compressed, weights["kv_b_proj.weight"]!)
        var k = Tensor(zeros: [b, s, h, dn + dr]), v = Tensor(zeros: [b, s, h, dv])
        for row in 0..<(b * s) {
            for head in 0..<h {
                let index = row * h + head, source = index * (dn + dv)
                for i in 0..<dn { k.storage[index * (dn + dr) + i] = keyValue.storage[source + i] }
                for i in 0..<dr { k.storage[index * (dn + dr) + dn + i] = latent.storage[row * (dc + dr) + dc + i] }
                for i in 0..<dv { v.storage[index * dv + i] = keyValue.storage[source + dn + i] }
            }
        }
        return (k, v)
    }
}
