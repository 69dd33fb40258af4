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
        var random: [String: Tensor] = [:]
        for (index, (name, shape)) in Self.weightShapes(config).sorted(by: { $0.key < $1.key }).enumerated() {
            let seed = seed &+ UInt64(index + 1)
            if shape.count == 1 {
                random[name] = Tensor(randomNormal: shape, std: 0.1, seed: seed)
                random[name]!.storage = random[name]!.storage.map { $0 + 1 }
            } else {
                random[name] = randomLinearWeight(shape[0], shape[1], seed: seed)
            }
        }
        try self.init(config: config, weights: random)
    }

    public init(config: MLAConfig, weights: [String: Tensor]) throws {
        try config.validate()
        let given = WeightDictionary(weights)
        var taken: [String: Tensor] = [:]
        for (name, shape) in Self.weightShapes(config) { taken[name] = try given.take(name, shape) }
        self.config = config
        self.weights = taken
        rotary = try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim)
    }

    public func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        let (b, s) = (input.batch, input.length)
        let (q, k, v) = try project(input.x, firstPositions: [Int](repeating: 0, count: b))
        let attended = CausalAttention.forward(q: q, k: k, v: v, scale: 1 / Float(config.queryHeadDim).squareRoot(),
                                               keyValid: input.keyValid)
        var y = linear(try attended.reshaped([b, s, config.heads * config.valueHeadDim]), weights["o_proj.weight"]!)
        input.zeroPadded(&y)
        return y
    }

    /// `RMSNorm(x · Wᵀ)` over rows of width `W.shape[0]`, or over the first `width` columns.
    func normalized(_ values: Tensor, columns: Int, stride: Int, weight: String) -> Tensor {
        let rows = values.count / stride
        var out = Tensor(zeros: [rows, columns])
        var compact = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { compact[r * columns + c] = values.storage[r * stride + c] } }
        compact.withUnsafeBufferPointer { input in
            weights[weight]!.storage.withUnsafeBufferPointer { w in
                out.storage.withUnsafeMutableBufferPointer { o in
                    Normalization.rmsNorm(input.baseAddress!, rows: rows, width: columns, weight: w.baseAddress!,
                                          epsilon: config.normEpsilon, output: o.baseAddress!)
                }
            }
        }
        return out
    }

    /// Per-head `q` and `k` `[B,S,H,dn+dr]` (RoPE applied) and `v` `[B,S,H,dv]` for rows of `x`.
    func project(_ x: Tensor, firstPositions: [Int]) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let c = config
        let (b, s, h, dn, dr, dv) = (x.shape[0], x.shape[1], c.heads, c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim)
        let compressedQuery = normalized(linear(x, weights["q_a_proj.weight"]!), columns: c.queryRank,
                                         stride: c.queryRank, weight: "q_a_layernorm.weight")
        var q = try linear(compressedQuery, weights["q_b_proj.weight"]!).reshaped([b, s, h, dn + dr])
        let keyValueInput = linear(x, weights["kv_a_proj_with_mqa.weight"]!)
        let compressedKeyValue = normalized(keyValueInput, columns: c.keyValueRank,
                                            stride: c.keyValueRank + dr, weight: "kv_a_layernorm.weight")
        let keyValue = linear(compressedKeyValue, weights["kv_b_proj.weight"]!)
        var ropeKey = Tensor(zeros: [b, s, 1, dr])
        var k = Tensor(zeros: [b, s, h, dn + dr]), v = Tensor(zeros: [b, s, h, dv])
        for row in 0..<(b * s) {
            for i in 0..<dr { ropeKey.storage[row * dr + i] = keyValueInput.storage[row * (c.keyValueRank + dr) + c.keyValueRank + i] }
        }
        rotary.apply(to: &ropeKey, firstPositions: firstPositions)
        // Rotate only the trailing dr channels of each query head: view them as their own heads.
        var queryRope = Tensor(zeros: [b, s, h, dr])
        for index in 0..<(b * s * h) {
            for i in 0..<dr { queryRope.storage[index * dr + i] = q.storage[index * (dn + dr) + dn + i] }
        }
        rotary.apply(to: &queryRope, firstPositions: firstPositions)
        for row in 0..<(b * s) {
            for head in 0..<h {
                let index = row * h + head
                for i in 0..<dr { q.storage[index * (dn + dr) + dn + i] = queryRope.storage[index * dr + i] }
                let kvBase = (row * h + head) * (dn + dv)
                for i in 0..<dn { k.storage[index * (dn + dr) + i] = keyValue.storage[kvBase + i] }
                for i in 0..<dr { k.storage[index * (dn + dr) + dn + i] = ropeKey.storage[row * dr + i] }
                for i in 0..<dv { v.storage[index * dv + i] = keyValue.storage[kvBase + dn + i] }
            }
        }
        return (q, k, v)
    }
}
