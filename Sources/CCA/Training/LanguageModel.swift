/// A decoder-only language model over ``LanguageModelConfig``, with its loss and exact gradients.
///
/// Generic over the scalar so the whole model's gradient can be checked in `Double`; training uses `Float`.
public struct LanguageModel<Scalar: TrainingScalar>: Sendable {
    public let config: LanguageModelConfig
    /// Every parameter under its name in ``LanguageModelConfig/parameterShapes``.
    public var parameters: [String: TrainingTensor<Scalar>]

    /// A model with the given parameters; throws ``WeightError`` when one is missing or mis-shaped.
    public init(config: LanguageModelConfig, parameters: [String: TrainingTensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.parameters = try WeightDictionary(parameters).take(config.parameterShapes)
    }

    /// A freshly initialised model, reproducible from `seed`: embeddings with std `1/sqrt(E)`, attention
    /// weights as the inference layers draw them, SwiGLU weights with std `1/sqrt(in)`, norms 1.
    public init(config: LanguageModelConfig, seed: UInt64) throws {
        try config.validate()
        let e = config.hiddenSize
        var random: [String: Tensor] = [
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
            let mlpShapes = SwiGLU<Float>.weightShapes(hiddenSize: e, intermediateSize: config.intermediateSize)
            for (index, (name, shape)) in mlpShapes.sorted(by: { $0.key < $1.key }).enumerated() {
                random[prefix + "mlp." + name] = randomLinearWeight(shape[0], shape[1], seed: layerSeed &+ 100 &+ UInt64(index))
            }
        }
        try self.init(config: config, parameters: random.training())
    }

    /// The parameters whose names start with `prefix`, with the prefix removed.
    func parameters(under prefix: String) -> [String: TrainingTensor<Scalar>] {
        var selected: [String: TrainingTensor<Scalar>] = [:]
        for (name, value) in parameters where name.hasPrefix(prefix) { selected[String(name.dropFirst(prefix.count))] = value }
        return selected
    }

    /// Mean next-token cross-entropy of `targets` given `inputs` (`batch` rows of equal length; targets of
    /// ``CrossEntropy/ignored`` do not count), and the gradient of every parameter.
    public func lossAndGradients(inputs: [Int], targets: [Int], batch: Int) throws
        -> (loss: Scalar, grads: [String: TrainingTensor<Scalar>]) {
        let (e, vocab, rows) = (config.hiddenSize, config.vocabSize, inputs.count)
        let length = rows / batch
        let norm = RMSNormTraining<Scalar>(width: e, epsilon: Scalar(config.normEpsilon))
        let embedding = parameters["embed_tokens.weight"]!
        var x = [Scalar](repeating: 0, count: rows * e)
        for (row, token) in inputs.enumerated() {
            for c in 0..<e { x[row * e + c] = embedding.storage[token * e + c] }
        }

        // Forward through the blocks, keeping each step's backward pass.
        typealias Backward = (inout [Scalar], inout [String: TrainingTensor<Scalar>]) -> Void
        var backwards: [Backward] = []
        for layer in 0..<config.layers {
            let prefix = "layers.\(layer)."
            let inputNorm = parameters[prefix + "input_layernorm.weight"]!.storage
            let postNorm = parameters[prefix + "post_attention_layernorm.weight"]!.storage
            let mlp = SwiGLU(weights: parameters(under: prefix + "mlp."))

            let (attentionIn, inputNormSaved) = norm.forward(x, rows: rows, weight: inputNorm)
            let (attended, attentionBackward) = try config.attentionLayer().pullback(
                parameters(under: prefix + "self_attn."), TrainingTensor(shape: [batch, length, e], storage: attentionIn))
            for i in 0..<x.count { x[i] += attended.storage[i] }
            let (mlpIn, postNormSaved) = norm.forward(x, rows: rows, weight: postNorm)
            let (mlpOut, mlpSaved) = mlp.forward(mlpIn, rows: rows)
            for i in 0..<x.count { x[i] += mlpOut[i] }

            // dx arrives as the gradient of this block's output; the residuals pass it straight through.
            backwards.append { dx, grads in
                let (dMLPIn, mlpGrads) = mlp.backward(dx, mlpSaved)
                for (name, gradient) in mlpGrads { grads[prefix + "mlp." + name] = gradient }
                let (dNormed, dPostNorm) = norm.backward(dMLPIn, weight: postNorm, postNormSaved)
                grads[prefix + "post_attention_layernorm.weight"] = TrainingTensor(shape: [e], storage: dPostNorm)
                for i in 0..<dx.count { dx[i] += dNormed[i] }
                let (dAttentionIn, attentionGrads) = attentionBackward(TrainingTensor(shape: [batch, length, e], storage: dx))
                for (name, gradient) in attentionGrads { grads[prefix + "self_attn." + name] = gradient }
                let (dInput, dInputNorm) = norm.backward(dAttentionIn.storage, weight: inputNorm, inputNormSaved)
                grads[prefix + "input_layernorm.weight"] = TrainingTensor(shape: [e], storage: dInputNorm)
                for i in 0..<dx.count { dx[i] += dInput[i] }
            }
        }
        let finalNorm = parameters["norm.weight"]!.storage
        let (hidden, finalNormSaved) = norm.forward(x, rows: rows, weight: finalNorm)
        let head = parameters[config.tiedEmbeddings ? "embed_tokens.weight" : "lm_head.weight"]!
        let logits = LinearTraining.forward(hidden, rows: rows, weight: head)
        let (loss, dLogits) = CrossEntropy.lossAndGradient(logits: logits, targets: targets, vocab: vocab)

        var grads: [String: TrainingTensor<Scalar>] = [:]
        var dHidden = [Scalar](repeating: 0, count: hidden.count)
        let dHead = LinearTraining.backward(dLogits, x: hidden, rows: rows, weight: head, dx: &dHidden)
        let (dFinal, dFinalNorm) = norm.backward(dHidden, weight: finalNorm, finalNormSaved)
        grads["norm.weight"] = TrainingTensor(shape: [e], storage: dFinalNorm)
        var dx = dFinal
        for backward in backwards.reversed() { backward(&dx, &grads) }
        // The embedding gathers its rows' gradients, plus the head's when tied.
        var dEmbedding = config.tiedEmbeddings ? dHead : TrainingTensor<Scalar>(zeros: embedding.shape)
        if !config.tiedEmbeddings { grads["lm_head.weight"] = dHead }
        for (row, token) in inputs.enumerated() {
            for c in 0..<e { dEmbedding.storage[token * e + c] += dx[row * e + c] }
        }
        grads["embed_tokens.weight"] = dEmbedding
        return (loss, grads)
    }
}
