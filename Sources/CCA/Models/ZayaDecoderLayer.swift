/// One layer of ZAYA (`ZayaDecoderLayer`), on an fp32 residual stream `r`:
/// `r = scale₁(CCA(RMSNorm(r)), r)`, then `r = scale₂(MoE(RMSNorm(r)), r)`, where each `scale` is a
/// ``ResidualScaling`` and the MoE is the ``ZayaRouter`` choosing one SwiGLU expert (or none) per token.
struct ZayaDecoderLayer: Sendable {
    let attention: CCA<Float>
    let inputNorm: Tensor<Float>, postAttentionNorm: Tensor<Float>
    let postAttentionScaling: ResidualScaling, postMLPScaling: ResidualScaling
    let router: ZayaRouter
    /// `gate_up_proj` `[N, 2I, E]` and `down_proj` `[N, E, I]`, left in their file.
    let gateUp: StoredTensor, down: StoredTensor
    let epsilon: Float

    /// Layer `index` from the tensors under `model.layers.<index>.`.
    init(config: ZayaConfig, index: Int, directory: ModelDirectory) throws {
        let prefix = "model.layers.\(index)."
        let e = config.hiddenSize
        let attentionConfig = try config.attention(config.resolvedLayerTypes[index])
        var attentionWeights: [String: Tensor<Float>] = [:]
        for (name, shape) in attentionConfig.weightShapes {
            attentionWeights[name] = try directory.floats(prefix + "self_attn." + name, shape: shape)
        }
        attention = try CCA(config: attentionConfig, weights: attentionWeights)
        inputNorm = try directory.floats(prefix + "input_layernorm.weight", shape: [e])
        postAttentionNorm = try directory.floats(prefix + "post_attention_layernorm.weight", shape: [e])
        func scaling(_ module: String) throws -> ResidualScaling {
            let names = ResidualScaling.weightNames
            func vector(_ name: String) throws -> Tensor<Float> { try directory.floats(prefix + module + "." + name, shape: [e]) }
            return ResidualScaling(hiddenScale: try vector(names.hiddenScale), hiddenBias: try vector(names.hiddenBias),
                                   residualScale: try vector(names.residualScale), residualBias: try vector(names.residualBias))
        }
        postAttentionScaling = try scaling("post_attention_residual_scale")
        postMLPScaling = try scaling("post_mlp_residual_scale")
        router = try ZayaRouter(config: config, layer: index, prefix: prefix + "mlp.gate.", directory: directory)
        let (n, i) = (config.experts, config.moeIntermediateSize)
        gateUp = try directory.tensor(prefix + "mlp.experts.gate_up_proj", shape: [n, 2 * i, e])
        down = try directory.tensor(prefix + "mlp.experts.down_proj", shape: [n, e, i])
        epsilon = Float(config.rmsNormEpsilon)
    }

    /// The residual stream after this layer for `x` `[rows, E]`, and the router state for the next layer.
    /// Padded rows are routed to no expert.
    func forward(_ x: Tensor<Float>, routerState: Tensor<Float>?, layout: SequenceLayout,
                 states: [DecodeState<Float>]?) throws -> (y: Tensor<Float>, routerState: Tensor<Float>) {
        let attended = try attention.forward(RMSNorm.forward(x, weight: inputNorm, epsilon: epsilon).y, layout: layout,
                                             states: states, keep: false).y
        let h = postAttentionScaling.forward(attended, residual: x)
        let normed = RMSNorm.forward(h, weight: postAttentionNorm, epsilon: epsilon).y
        var (experts, weights, nextState) = router.forward(normed, previousState: routerState)
        for row in 0..<layout.rows where !layout.isValid(row) { experts[row] = nil }
        let mixed = MixtureOfExperts.forward(normed, experts: experts, weights: weights, gateUp: gateUp, down: down)
        return (postMLPScaling.forward(mixed, residual: h), nextState)
    }
}
