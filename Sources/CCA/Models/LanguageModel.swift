/// A decoder-only language model over ``LanguageModelConfig``: token embedding, pre-norm blocks of any
/// attention kind, final RMSNorm and a tied or untied head.
///
/// One forward pass (``forward(tokens:layout:states:keep:)``) serves the training loss and its exact
/// gradients, validation, and decoding through per-layer decode states. Generic over the scalar so the
/// whole model's gradient can be checked in `Double`; everything else runs in `Float`.
public struct LanguageModel<Scalar: TensorScalar>: Sendable {
    public let config: LanguageModelConfig
    /// Every parameter under its name in ``LanguageModelConfig/parameterShapes``.
    public private(set) var parameters: [String: Tensor<Scalar>]
    var blocks: [DecoderBlock<Scalar>]

    /// A model with the given parameters; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: LanguageModelConfig, parameters: [String: Tensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.parameters = try WeightDictionary(parameters).take(config.parameterShapes)
        blocks = try Self.blocks(config, self.parameters)
    }

    /// A freshly initialised model, reproducible from `seed`: embeddings with std `1/sqrt(E)`, attention
    /// weights as each kind draws them, MLP weights with std `1/sqrt(in)`, norms 1.
    public init(config: LanguageModelConfig, seed: UInt64) throws {
        try config.validate()
        let e = config.hiddenSize
        var random: [String: Tensor<Float>] = [
            "embed_tokens.weight": Tensor(randomNormal: [config.vocabSize, e], std: 1 / Float(e).squareRoot(), seed: seed),
            "norm.weight": Tensor(zeros: [e], value: 1),
        ]
        if !config.tiedEmbeddings {
            random["lm_head.weight"] = Tensor(randomNormal: [config.vocabSize, e], std: 1 / Float(e).squareRoot(), seed: seed &+ 1)
        }
        for layer in 0..<config.layers {
            let prefix = "layers.\(layer).", layerSeed = seed &+ UInt64(1000 * (layer + 1))
            random[prefix + "input_layernorm.weight"] = Tensor(zeros: [e], value: 1)
            random[prefix + "post_attention_layernorm.weight"] = Tensor(zeros: [e], value: 1)
            for (name, weight) in try config.attentionLayer().initialWeights(seed: layerSeed) {
                random[prefix + "self_attn." + name] = weight
            }
            let mlpShapes = MLP<Float>.weightShapes(hiddenSize: e, intermediateSize: config.intermediateSize)
            for (index, (name, shape)) in mlpShapes.sorted(by: { $0.key < $1.key }).enumerated() {
                random[prefix + "mlp." + name] = randomLinearWeight(shape[0], shape[1], seed: layerSeed &+ 100 &+ UInt64(index))
            }
        }
        try self.init(config: config, parameters: random.mapValues { Tensor<Scalar>($0) })
    }

    /// Changes the parameters in place (an optimizer step, a probe of a gradient check); the result is
    /// checked as a new model's would be.
    public mutating func updateParameters(_ body: (inout [String: Tensor<Scalar>]) throws -> Void) throws {
        var updated = parameters
        try body(&updated)
        self = try LanguageModel(config: config, parameters: updated)
    }

    static func blocks(_ config: LanguageModelConfig, _ parameters: [String: Tensor<Scalar>]) throws -> [DecoderBlock<Scalar>] {
        let all = WeightDictionary(parameters)
        return try (0..<config.layers).map { try DecoderBlock(config: config, weights: WeightDictionary(all.under("layers.\($0)."))) }
    }

    var head: Tensor<Scalar> { parameters[config.tiedEmbeddings ? "embed_tokens.weight" : "lm_head.weight"]! }

    /// The backward pass of one forward pass: `dlogits` → the gradient of every parameter.
    public typealias Backward = (Tensor<Scalar>) throws -> [String: Tensor<Scalar>]

    /// Logits `[rows, vocab]` for `tokens` laid out by `layout`; with `states` (per layer, one per
    /// sequence) each sequence continues its decode state; with `keep`, the backward pass.
    public func forward(tokens: [Int], layout: SequenceLayout, states: [[DecodeState<Scalar>]]? = nil, keep: Bool = false)
        throws -> (logits: Tensor<Scalar>, backward: Backward?) {
        guard tokens.count == layout.rows else {
            throw ShapeError.mismatch(name: "tokens", expected: [layout.rows], actual: [tokens.count])
        }
        if let states, states.count != config.layers {
            throw DecodeError.stateCount(sequences: config.layers, states: states.count)
        }
        let embedding = parameters["embed_tokens.weight"]!
        var x = try Embedding.forward(tokens, table: embedding)
        var backwards: [DecoderBlock<Scalar>.Backward] = []
        for (layer, block) in blocks.enumerated() {
            let (y, backward) = try block.forward(x, layout: layout, states: states?[layer], keep: keep)
            x = y
            if let backward { backwards.append(backward) }
        }
        let finalNorm = parameters["norm.weight"]!
        let (hidden, inverseRMS) = RMSNorm.forward(x, weight: finalNorm, epsilon: Scalar(config.normEpsilon))
        let logits = Linear.forward(hidden, head)
        guard keep else { return (logits, nil) }
        return (logits, { [self, x] dLogits in
            var grads: [String: Tensor<Scalar>] = [:]
            let (dHidden, dHead) = Linear.backward(dLogits, x: hidden, weight: head)
            var (dx, dFinalNorm) = RMSNorm.backward(dHidden, x: x, weight: finalNorm, inverseRMS: inverseRMS)
            grads["norm.weight"] = dFinalNorm
            for (layer, backward) in backwards.enumerated().reversed() {
                let (dInput, blockGrads) = try backward(dx)
                dx = dInput
                for (name, gradient) in blockGrads { grads["layers.\(layer)." + name] = gradient }
            }
            // The embedding gathers its rows' gradients, plus the head's when tied.
            var dEmbedding = config.tiedEmbeddings ? dHead : Tensor<Scalar>(zeros: embedding.shape)
            if !config.tiedEmbeddings { grads["lm_head.weight"] = dHead }
            Embedding.backward(dx, tokens: tokens, dTable: &dEmbedding)
            grads["embed_tokens.weight"] = dEmbedding
            return grads
        })
    }

    /// Mean next-token cross-entropy of `targets` given `inputs` (targets of ``CrossEntropy/ignored`` do
    /// not count), and the gradient of every parameter.
    public func lossAndGradients(inputs: [Int], targets: [Int], layout: SequenceLayout) throws
        -> (loss: Scalar, grads: [String: Tensor<Scalar>]) {
        let (logits, backward) = try forward(tokens: inputs, layout: layout, keep: true)
        let (loss, dLogits) = CrossEntropy.backward(logits: logits.storage, targets: targets, vocab: config.vocabSize)
        return (loss, try backward!(Tensor(checked: logits.shape, dLogits)))
    }

    /// ``lossAndGradients(inputs:targets:layout:)`` for `batch` rows of equal length.
    public func lossAndGradients(inputs: [Int], targets: [Int], batch: Int) throws -> (loss: Scalar, grads: [String: Tensor<Scalar>]) {
        try lossAndGradients(inputs: inputs, targets: targets, layout: SequenceLayout(batch: batch, length: inputs.count / max(1, batch)))
    }

    /// The mean loss alone (validation): no activations are kept.
    public func loss(inputs: [Int], targets: [Int], layout: SequenceLayout) throws -> Scalar {
        let logits = try forward(tokens: inputs, layout: layout).logits
        return CrossEntropy.forward(logits: logits.storage, targets: targets, vocab: config.vocabSize)
    }

    /// Next-token logits `[B·S, vocab]` for `batch` rows of tokens of equal length.
    public func logits(tokens: [Int], batch: Int) throws -> Tensor<Scalar> {
        try forward(tokens: tokens, layout: SequenceLayout(batch: batch, length: tokens.count / max(1, batch))).logits
    }

    /// Fresh decode states for one sequence of at most `capacity` tokens, one per layer.
    public func makeStates(capacity: Int) throws -> [DecodeState<Scalar>] {
        try blocks.map { try $0.attention.makeState(capacity: capacity) }
    }
}
