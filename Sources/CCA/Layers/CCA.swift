import RealModule

/// Compressed Convolutional Attention (CCA), and CCGQA when `queryHeads > keyValueHeads`.
///
/// Queries, keys and values are down-projected to latent heads of width `d`; q and k are mixed along the
/// sequence by ``CCAConvolution`` and given the QK-mean skip path; half the value channels see the
/// previous token; q and k are L2-normalised to `sqrt(d)`, k scaled by its head's temperature; RoPE and
/// causal attention run inside the latent space; `o_proj` maps back to `E`. See `CCA.md` for the math.
///
/// Weight names are those of the transformers ZAYA attention module (`qkv_proj.q_proj.weight`, ...).
public struct CCA: AttentionLayer {
    public let config: CCAConfig
    public let weights: [String: Tensor]
    let rotary: RotaryEmbedding
    let convolution: CCAConvolution

    public var hiddenSize: Int { config.hiddenSize }

    /// The weight names and shapes this config needs.
    public static func weightShapes(_ config: CCAConfig) -> [String: [Int]] {
        let (e, eq, ek, ct, d) = (config.hiddenSize, config.queryWidth, config.keyWidth, config.convolutionChannels, config.headDim)
        var shapes: [String: [Int]] = [
            "qkv_proj.q_proj.weight": [eq, e],
            "qkv_proj.k_proj.weight": [ek, e],
            "qkv_proj.v_proj_current.weight": [ek / 2, e],
            "qkv_proj.v_proj_delayed.weight": [ek / 2, e],
            "qk_norm.temp": [config.keyValueHeads],
            "o_proj.weight": [e, eq],
        ]
        if config.convolutions >= 1 {
            shapes["qkv_proj.conv_qk_depthwise.weight"] = [ct, 1, 2]
            shapes["qkv_proj.conv_qk_depthwise.bias"] = [ct]
        }
        if config.convolutions == 2 {
            shapes["qkv_proj.conv_qk_grouped.weight"] = [ct, d, 2]
            shapes["qkv_proj.conv_qk_grouped.bias"] = [ct]
        }
        return shapes
    }

    /// A layer with random weights, reproducible from `seed`. Temperatures are drawn near 1 (`linear`)
    /// or near 0 (`exp`), convolution weights with PyTorch's default scale.
    public init(config: CCAConfig, seed: UInt64 = 0) throws {
        try config.validate()
        try self.init(config: config, weights: randomWeights(Self.weightShapes(config), seed: seed) { name, shape, seed in
            if name == "qk_norm.temp" {
                let temp = Tensor(randomNormal: shape, std: 0.1, seed: seed)
                return config.temperature == .linear ? try! Tensor(shape: shape, storage: temp.storage.map { $0 + 1 }) : temp
            }
            guard name.hasPrefix("qkv_proj.conv") else { return nil }
            // PyTorch's Conv1d scale: 1/sqrt(in-channels per group × kernel), for the weight and its bias.
            let fanIn = name.contains("depthwise") ? 2 : 2 * config.headDim
            return Tensor(randomNormal: shape, std: 1 / Float(fanIn).squareRoot(), seed: seed)
        })
    }

    /// A layer with the given weights; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: CCAConfig, weights: [String: Tensor]) throws {
        try config.validate()
        let taken = try WeightDictionary(weights).take(Self.weightShapes(config))
        self.config = config
        self.weights = taken
        rotary = try config.rope.embedding(headDim: config.headDim)
        convolution = CCAConvolution(
            count: config.convolutions, channels: config.convolutionChannels, headDim: config.headDim,
            depthwiseWeight: taken["qkv_proj.conv_qk_depthwise.weight"], depthwiseBias: taken["qkv_proj.conv_qk_depthwise.bias"],
            groupedWeight: taken["qkv_proj.conv_qk_grouped.weight"], groupedBias: taken["qkv_proj.conv_qk_grouped.bias"])
    }

    public func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        var states = (0..<input.batch).map { _ in SequenceState(config) }
        let (q, k, v) = try project(input.x, states: &states)
        let attended = CausalAttention.forward(q: q, k: k, v: v, scale: 1 / Float(config.headDim).squareRoot(),
                                               keyValid: input.keyValid)
        var y = linear(try attended.reshaped([input.batch, input.length, config.queryWidth]), weights["o_proj.weight"]!)
        input.zeroPadded(&y)
        return y
    }

    /// The attention inputs `q` `[B,S,Hq,d]` and `k`, `v` `[B,S,Hkv,d]` after convolution, QK-mean, value
    /// shift, normalisation, temperature and RoPE: for inspecting the layer or comparing with another framework.
    public func attentionInputs(_ x: Tensor, mask: Tensor? = nil) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        var states = (0..<input.batch).map { _ in SequenceState(config) }
        return try project(input.x, states: &states)
    }

    /// What CCA carries from one chunk of a sequence to the next, besides the KV cache.
    public struct SequenceState: Sendable {
        /// The last two rows of pre-convolution `[q0 ; k0]` (`[2, ct]`, zeros at a sequence start).
        public var convolutionHistory: [Float]
        /// The previous token's delayed value projection `x_{t-1} · Wv_delayedᵀ` (`[ek/2]`).
        public var previousDelayedValue: [Float]
        /// Position of the next token.
        public var position: Int

        public init(_ config: CCAConfig) {
            convolutionHistory = [Float](repeating: 0, count: 2 * config.convolutionChannels)
            previousDelayedValue = [Float](repeating: 0, count: config.keyWidth / 2)
            position = 0
        }
    }

    /// Steps 2–8 of the spec for a chunk `x` `[B, S, E]` (rows already masked), continuing `states`.
    /// Returns `q` `[B,S,Hq,d]` and `k`, `v` `[B,S,Hkv,d]` ready for attention, and advances the states.
    func project(_ x: Tensor, states: inout [SequenceState]) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let (b, s, d) = (x.shape[0], x.shape[1], config.headDim)
        let (hq, hkv, eq, ek, ct) = (config.queryHeads, config.keyValueHeads, config.queryWidth, config.keyWidth,
                                     config.convolutionChannels)
        let rows = b * s
        // Pre-convolution latents [q0 ; k0] side by side in one [B·S, ct] buffer.
        var latents = [Float](repeating: 0, count: rows * ct)
        x.storage.withUnsafeBufferPointer { xs in
            latents.withUnsafeMutableBufferPointer { out in
                for (name, column, width) in [("qkv_proj.q_proj.weight", 0, eq), ("qkv_proj.k_proj.weight", eq, ek)] {
                    weights[name]!.storage.withUnsafeBufferPointer { w in
                        MatrixMultiply.gemm(transposeB: true, m: rows, n: width, k: hiddenSize, a: xs.baseAddress!,
                                            lda: hiddenSize, b: w.baseAddress!, ldb: hiddenSize,
                                            c: out.baseAddress! + column, ldc: ct)
                    }
                }
            }
        }
        let valueCurrent = linear(x, weights["qkv_proj.v_proj_current.weight"]!).storage
        let valueDelayed = linear(x, weights["qkv_proj.v_proj_delayed.weight"]!).storage

        var q = Tensor(zeros: [b, s, hq, d]), k = Tensor(zeros: [b, s, hkv, d]), v = Tensor(zeros: [b, s, hkv, d])
        let temperatures = weights["qk_norm.temp"]!.storage.map { config.temperature == .exp ? Float.exp($0) : $0 }
        let targetNorm = Float(d).squareRoot()
        let group = config.groupSize
        latents.withUnsafeBufferPointer { latentBuffer in
        q.storage.withUnsafeMutableBufferPointer { qBuffer in
        k.storage.withUnsafeMutableBufferPointer { kBuffer in
        v.storage.withUnsafeMutableBufferPointer { vBuffer in
        states.withUnsafeMutableBufferPointer { stateBuffer in
            let (latentBase, qBase, kBase, vBase) = (latentBuffer.baseAddress!, qBuffer.baseAddress!, kBuffer.baseAddress!, vBuffer.baseAddress!)
            parallelFor(b) { sequence in
                let pre = latentBase + sequence * s * ct
                let mixed = UnsafeMutablePointer<Float>.allocate(capacity: s * ct)
                defer { mixed.deallocate() }
                stateBuffer[sequence].convolutionHistory.withUnsafeBufferPointer { history in
                    convolution.apply(pre, rows: s, history: history.baseAddress! + (2 - convolution.historyLength) * ct,
                                      output: mixed)
                }
                for t in 0..<s {
                    let preRow = pre + t * ct, mixedRow = mixed + t * ct
                    let qRow = qBase + (sequence * s + t) * eq, kRow = kBase + (sequence * s + t) * ek
                    for h in 0..<hq {
                        for c in 0..<d {
                            let mean = config.qkMean ? (preRow[h * d + c] + preRow[eq + (h / group) * d + c]) / 2 : 0
                            qRow[h * d + c] = mixedRow[h * d + c] + mean
                        }
                    }
                    for j in 0..<hkv {
                        for c in 0..<d {
                            var mean: Float = 0
                            if config.qkMean {
                                for h in (j * group)..<((j + 1) * group) { mean += preRow[h * d + c] }
                                mean = (mean / Float(group) + preRow[eq + j * d + c]) / 2
                            }
                            kRow[j * d + c] = mixedRow[eq + j * d + c] + mean
                        }
                    }
                    Normalization.l2Normalize(qRow, vectors: hq, width: d, targetNorm: targetNorm)
                    Normalization.l2Normalize(kRow, vectors: hkv, width: d, targetNorm: targetNorm)
                    for j in 0..<hkv { for c in 0..<d { kRow[j * d + c] *= temperatures[j] } }
                }
                let position = stateBuffer[sequence].position
                rotary.apply(qBase + sequence * s * eq, rows: s, heads: hq, headDim: d, firstPosition: position)
                rotary.apply(kBase + sequence * s * ek, rows: s, heads: hkv, headDim: d, firstPosition: position)

                // Values: [current ; delayed] per row, the delayed half one token late.
                let half = ek / 2
                for t in 0..<s {
                    let row = sequence * s + t, vRow = vBase + row * ek
                    for c in 0..<half { vRow[c] = valueCurrent[row * half + c] }
                    for c in 0..<half {
                        vRow[half + c] = !config.valueShift ? valueDelayed[row * half + c]
                            : t == 0 ? stateBuffer[sequence].previousDelayedValue[c] : valueDelayed[(row - 1) * half + c]
                    }
                }
                // Advance the state past this chunk.
                if s > 0 {
                    var history = stateBuffer[sequence].convolutionHistory
                    let combined = Array(history) + Array(UnsafeBufferPointer(start: pre, count: s * ct))
                    history = Array(combined[(combined.count - 2 * ct)...])
                    stateBuffer[sequence].convolutionHistory = history
                    stateBuffer[sequence].previousDelayedValue = Array(valueDelayed[((sequence * s + s - 1) * half)..<((sequence * s + s) * half)])
                    stateBuffer[sequence].position = position + s
                }
            }
        }}}}}
        return (q, k, v)
    }
}
