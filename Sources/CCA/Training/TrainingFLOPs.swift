extension LanguageModelConfig {
    /// Model FLOPs of one training token (forward and backward) at sequence length `length`, as
    /// model-FLOPs utilisation counts them: `6` per weight of every matrix product (the projections, the MLP
    /// and the head, which reads the embedding when tied; the embedding lookup and the small convolutions
    /// are not products), plus the attention scores and values, `3 · 2 · Hq · (dk + dv)` per key attended,
    /// `(length + 1) / 2` keys on average under the causal mask.
    public func trainingFLOPsPerToken(length: Int) -> Double {
        let products = parameterShapes.filter { $0.value.count == 2 && $0.key != "embed_tokens.weight" }
            .reduce(0) { $0 + $1.value[0] * $1.value[1] }
        let head = tiedEmbeddings ? vocabSize * hiddenSize : 0
        let (queryHeads, keyDim, valueDim) = attentionHeadShape
        let keysAttended = Double(length + 1) / 2
        return 6 * Double(products + head) + Double(layers) * 3 * 2 * Double(queryHeads * (keyDim + valueDim)) * keysAttended
    }

    /// Query heads of the attention product and their key and value widths (CCA's latent heads).
    var attentionHeadShape: (queryHeads: Int, keyDim: Int, valueDim: Int) {
        switch attentionLayer() {
        case let gqa as GQAConfig: (gqa.queryHeads, gqa.headDim, gqa.headDim)
        case let cca as CCAConfig: (cca.queryHeads, cca.headDim, cca.headDim)
        case let mla as MLAConfig: (mla.heads, mla.queryHeadDim, mla.valueHeadDim)
        default: (heads, headDim, headDim)
        }
    }
}
