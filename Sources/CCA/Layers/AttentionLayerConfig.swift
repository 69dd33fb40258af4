/// The configuration of one attention layer of any kind: what a JSON config file describes (see
/// `LayerConfigFile.swift`) and what each block of a language model holds. MHA is GQA with equal head counts.
public enum AttentionLayerConfig: Sendable, Equatable {
    case mha(GQAConfig), gqa(GQAConfig), mla(MLAConfig), cca(CCAConfig)

    public var weightShapes: [String: [Int]] {
        switch self {
        case .mha(let config), .gqa(let config): GQA.weightShapes(config)
        case .mla(let config): MLA.weightShapes(config)
        case .cca(let config): CCA.weightShapes(config)
        }
    }

    public func validate() throws {
        switch self {
        case .mha(let config):
            guard config.queryHeads == config.keyValueHeads else {
                throw ConfigError.invalidValue(name: "num_key_value_heads", value: "\(config.keyValueHeads)",
                                               expected: "num_attention_heads (\(config.queryHeads)) for MHA")
            }
            try config.validate()
        case .gqa(let config): try config.validate()
        case .mla(let config): try config.validate()
        case .cca(let config): try config.validate()
        }
    }

    /// Initial weights, drawn as the inference layers draw them.
    public func initialWeights(seed: UInt64) throws -> [String: Tensor] {
        switch self {
        case .mha(let config), .gqa(let config): try GQA(config: config, seed: seed).weights
        case .mla(let config): try MLA(config: config, seed: seed).weights
        case .cca(let config): try CCA(config: config, seed: seed).weights
        }
    }

    /// The inference layer with `weights` (checked by name and shape).
    public func inferenceLayer(weights: [String: Tensor]) throws -> any DecodingAttention {
        switch self {
        case .mha(let config): try MHA(config: config, weights: weights)
        case .gqa(let config): try GQA(config: config, weights: weights)
        case .mla(let config): try MLA(config: config, weights: weights)
        case .cca(let config): try CCA(config: config, weights: weights)
        }
    }

    /// The trainable layer's forward pass on `x` and its backward closure, as ``DifferentiableAttention/pullback(_:)``.
    ///
    /// Switches over the concrete layer types instead of going through an `any DifferentiableAttention`:
    /// only then does the compiler specialise the layer code for `S`, and unspecialised generic code
    /// spends most of its time looking up array metadata.
    func pullback<S: TrainingScalar>(_ weights: [String: TrainingTensor<S>], _ x: TrainingTensor<S>) throws
        -> (y: TrainingTensor<S>, backward: (TrainingTensor<S>) -> (dx: TrainingTensor<S>, grads: [String: TrainingTensor<S>])) {
        switch self {
        case .mha(let config), .gqa(let config): try TrainableGQA(config: config, weights: weights).pullback(x)
        case .mla(let config): try TrainableMLA(config: config, weights: weights).pullback(x)
        case .cca(let config): try TrainableCCA(config: config, weights: weights).pullback(x)
        }
    }
}
