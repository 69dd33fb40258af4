import RealModule

/// Steps 4–8 of CCA: from the pre-convolution latents `[q0 | k0]` to the attention's `q` and `k` — the two
/// causal convolutions (``CCAConvolution``), the QK-mean (``QKMean``), the L2 normalisation to `sqrt(d)`
/// with the key temperature (``L2Normalization``) and RoPE (``RotaryEmbedding``) — and its backward pass.
///
/// It takes and returns each sequence's convolution history (the last two pre-convolution rows), so a
/// full pass, packed documents, chunks and single decode steps all run through this one function.
struct CCAPrologue<S: TensorScalar>: Sendable {
    let config: CCAConfig
    let convolution: CCAConvolution<S>
    /// `qk_norm.temp` `[Hkv]` as stored.
    let temperature: [S]
    let rotary: RotaryEmbedding

    init(config: CCAConfig, weights: [String: Tensor<S>], rotary: RotaryEmbedding) {
        self.config = config
        convolution = CCAConvolution(count: config.convolutions, channels: config.convolutionChannels,
                                     headDim: config.headDim, weights: weights)
        temperature = weights["qk_norm.temp"]!.storage
        self.rotary = rotary
    }

    /// The factor each KV head's k is multiplied by: `temp` (linear) or `exp(temp)`.
    var keyScales: [S] { config.temperature == .exp ? temperature.map { S.exp($0) } : temperature }
    var targetNorm: S { S(config.headDim).squareRoot() }

    /// What the backward pass reads.
    struct Saved: Sendable {
        var latents: [S]
        var convolution: CCAConvolution<S>.Saved
        /// q and k before the normalisation, and their norms.
        var queryPre: Tensor<S>, keyPre: Tensor<S>, queryNorms: [S], keyNorms: [S]
        var positions: [Int]
    }

    /// `q` `[rows, Hq, d]`, `k` `[rows, Hkv, d]`, and each sequence's new history.
    ///
    /// - Parameters:
    ///   - latents: `[rows, ct]` pre-convolution `[q0 | k0]`, padded rows already zero.
    ///   - histories: per sequence, the `[2, ct]` rows before it (older first); nil for fresh sequences.
    ///   - positions: the RoPE position of every row.
    @_specialize(where S == Float)
    func forward(_ latents: [S], layout: SequenceLayout, histories: [[S]]?, positions: [Int])
        -> (q: Tensor<S>, k: Tensor<S>, saved: Saved, histories: [[S]]) {
        let (rows, d, hq, hkv) = (layout.rows, config.headDim, config.queryHeads, config.keyValueHeads)
        let (mixed, convolutionSaved) = convolution.forward(latents, layout: layout, histories: histories)
        let (qPre, kPre) = QKMean.forward(mixed: mixed, latents: latents, rows: rows, queryHeads: hq, keyValueHeads: hkv,
                                          headDim: d, enabled: config.qkMean)
        let queryPre = Tensor(checked: [rows, hq, d], qPre), keyPre = Tensor(checked: [rows, hkv, d], kPre)
        var (q, queryNorms) = L2Normalization.forward(queryPre, width: d, target: targetNorm)
        var (k, keyNorms) = L2Normalization.forward(keyPre, width: d, target: targetNorm, scales: keyScales)
        rotary.forward(&q, positions: positions, heads: hq, headStride: d)
        rotary.forward(&k, positions: positions, heads: hkv, headStride: d)
        let saved = Saved(latents: latents, convolution: convolutionSaved, queryPre: queryPre, keyPre: keyPre,
                          queryNorms: queryNorms, keyNorms: keyNorms, positions: positions)
        return (q, k, saved, nextHistories(latents, layout: layout, histories: convolutionSaved.histories))
    }

    /// The last two rows of each sequence's history followed by its latents.
    func nextHistories(_ latents: [S], layout: SequenceLayout, histories: [[S]]) -> [[S]] {
        let ct = config.convolutionChannels
        return layout.sequences.enumerated().map { index, range in
            let fromLatents = min(range.count, 2)
            return Array(histories[index].suffix((2 - fromLatents) * ct)) + latents[((range.upperBound - fromLatents) * ct)..<(range.upperBound * ct)]
        }
    }

    /// `dLatents` `[rows, ct]` for the gradients of `q` and `k`, and the gradients of the convolution
    /// weights and the temperature under their interchange names.
    func backward(dq: Tensor<S>, dk: Tensor<S>, layout: SequenceLayout, saved: Saved) -> (dLatents: [S], grads: [String: Tensor<S>]) {
        let (rows, d, hq, hkv) = (layout.rows, config.headDim, config.queryHeads, config.keyValueHeads)
        var (dq, dk) = (dq, dk)
        rotary.backward(&dq, positions: saved.positions, heads: hq, headStride: d)
        rotary.backward(&dk, positions: saved.positions, heads: hkv, headStride: d)
        let scales = keyScales
        let (dQueryPre, _) = L2Normalization.backward(dq, x: saved.queryPre, norms: saved.queryNorms, width: d, target: targetNorm)
        let (dKeyPre, dScales) = L2Normalization.backward(dk, x: saved.keyPre, norms: saved.keyNorms, width: d,
                                                          target: targetNorm, scales: scales)
        // d temp = d scale · (1 for linear, exp(temp) for exp).
        let dTemperature = zip(dScales!, scales).map { config.temperature == .exp ? $0 * $1 : $0 }
        let (dMixed, dMean) = QKMean.backward(dq: dQueryPre.storage, dk: dKeyPre.storage, rows: rows, queryHeads: hq,
                                             keyValueHeads: hkv, headDim: d, enabled: config.qkMean)
        var (dLatents, grads) = convolution.backward(dMixed, input: saved.latents, layout: layout, saved: saved.convolution)
        for i in dMean.indices { dLatents[i] += dMean[i] }
        grads["qk_norm.temp"] = Tensor(checked: [hkv], dTemperature)
        return (dLatents, grads)
    }
}
