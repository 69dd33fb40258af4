/// Parameters, KV-cache size and forward FLOPs of one attention layer, counted from its configuration.
///
/// The counts are exact for the layers this package implements (a test checks them against the real
/// parameter counts). For the usual shapes they reduce to the report's Table II: MHA `4E²`, `8BSE² + 4BS²E`;
/// CCA `4E²/C + conv`, `(2/C)·4BSE² + 4BS²E/C + conv`; and so on. FLOPs count a multiply-add as 2; the
/// `S²` attention terms are halved for causal attention (a kernel that skips masked blocks).
/// Element-wise work (softmax, norms, RoPE, the QK-mean) is not counted, as in the report.
public struct LayerCost: Sendable, Equatable {
    /// Scalar parameters.
    public var parameters: Int
    /// Numbers the decode cache holds per token (keys and values, or MLA's `c_kv` and RoPE key).
    public var cacheElementsPerToken: Int
    /// FLOPs of the projections (and convolutions) per token.
    public var projectionFLOPsPerToken: Int
    /// FLOPs of `QKᵀ` and `PV` per query-key pair.
    public var attentionFLOPsPerPair: Int

    /// Forward FLOPs for `batch` sequences of `length` tokens.
    public func forwardFLOPs(length: Int, batch: Int = 1, causal: Bool = true) -> Double {
        let (s, b) = (Double(length), Double(batch))
        let pairs = causal ? s * s / 2 : s * s
        return b * (s * Double(projectionFLOPsPerToken) + pairs * Double(attentionFLOPsPerPair))
    }

    /// KV-cache elements for `batch` sequences of `length` tokens.
    public func cacheElements(length: Int, batch: Int = 1) -> Int { batch * length * cacheElementsPerToken }
}

extension GQAConfig {
    /// Cost of this layer (MHA when both head counts are equal).
    public var cost: LayerCost {
        let (e, qWidth, kvWidth) = (hiddenSize, queryHeads * headDim, keyValueHeads * headDim)
        return LayerCost(parameters: 2 * e * qWidth + 2 * e * kvWidth, cacheElementsPerToken: 2 * kvWidth,
                         projectionFLOPsPerToken: 2 * (2 * e * qWidth + 2 * e * kvWidth),
                         attentionFLOPsPerPair: 4 * qWidth)
    }
}

extension MLAConfig {
    /// Cost of this layer, including the RoPE projections and norm weights the report's line omits.
    public var cost: LayerCost {
        let (e, h, dn, dr, dv) = (hiddenSize, heads, noPEHeadDim, ropeHeadDim, valueHeadDim)
        let products = e * queryRank + queryRank * h * (dn + dr) + e * (keyValueRank + dr)
            + keyValueRank * h * (dn + dv) + h * dv * e
        return LayerCost(parameters: products + queryRank + keyValueRank, cacheElementsPerToken: keyValueRank + dr,
                         projectionFLOPsPerToken: 2 * products, attentionFLOPsPerPair: 2 * h * (dn + dr) + 2 * h * dv)
    }
}

extension CCAConfig {
    /// Cost of this layer, convolutions included (`2·ct + 2·ct·d` weights plus two biases of `ct`).
    public var cost: LayerCost {
        let (e, eq, ek, ct, d) = (hiddenSize, queryWidth, keyWidth, convolutionChannels, headDim)
        let convolutionMACs = (convolutions >= 1 ? 2 * ct : 0) + (convolutions == 2 ? 2 * ct * d : 0)
        let convolutionBiases = convolutions * ct
        let projections = e * eq + 2 * e * ek + eq * e
        return LayerCost(parameters: projections + convolutionMACs + convolutionBiases + keyValueHeads,
                         cacheElementsPerToken: 2 * ek,
                         projectionFLOPsPerToken: 2 * projections + 2 * convolutionMACs,
                         attentionFLOPsPerPair: 4 * eq)
    }
}

extension AttentionLayerConfig {
    /// Cost of the layer this config describes.
    public var cost: LayerCost {
        switch self {
        case .mha(let config), .gqa(let config): config.cost
        case .mla(let config): config.cost
        case .cca(let config): config.cost
        }
    }
}
