/// One pre-norm block of the language model: `x + attention(RMSNorm(x))`, then `h + MLP(RMSNorm(h))`.
struct DecoderBlock<Scalar: TensorScalar>: Sendable {
    let attention: any AttentionLayer<Scalar>
    let mlp: MLP<Scalar>
    let inputNorm: Tensor<Scalar>, postNorm: Tensor<Scalar>
    let epsilon: Scalar

    /// The block of layer weights under their names without the `layers.N.` prefix.
    init(config: LanguageModelConfig, weights: WeightDictionary<Scalar>) throws {
        attention = try config.attentionLayer().makeLayer(weights: weights.under("self_attn."))
        mlp = try MLP(hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize, weights: weights.under("mlp."))
        inputNorm = try weights.take("input_layernorm.weight", [config.hiddenSize])
        postNorm = try weights.take("post_attention_layernorm.weight", [config.hiddenSize])
        epsilon = Scalar(config.normEpsilon)
    }

    typealias Backward = (Tensor<Scalar>) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>])

    /// The block's output for `x` `[rows, E]`, and, with `keep`, its backward pass.
    func forward(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keep: Bool) throws
        -> (y: Tensor<Scalar>, backward: Backward?) {
        let (attentionIn, inputInverse) = RMSNorm.forward(x, weight: inputNorm, epsilon: epsilon)
        var h = x
        let attentionBackward: Backward?
        if keep {
            let (attended, backward) = try attention.pullback(attentionIn, layout: layout)
            for i in 0..<h.count { h.storage[i] += attended.storage[i] }
            attentionBackward = backward
        } else {
            let attended = try attention.forward(attentionIn, layout: layout, states: states, keep: false).y
            for i in 0..<h.count { h.storage[i] += attended.storage[i] }
            attentionBackward = nil
        }
        let (mlpIn, postInverse) = RMSNorm.forward(h, weight: postNorm, epsilon: epsilon)
        let (mlpOut, mlpSaved) = mlp.forward(mlpIn)
        var y = h
        for i in 0..<y.count { y.storage[i] += mlpOut.storage[i] }
        guard let attentionBackward else { return (y, nil) }
        // dy arrives as the gradient of this block's output; the residuals pass it straight through.
        return (y, { dy in
            var grads: [String: Tensor<Scalar>] = [:]
            let (dMLPIn, mlpGrads) = mlp.backward(dy, mlpSaved)
            for (name, gradient) in mlpGrads { grads["mlp." + name] = gradient }
            let (dh, dPostNorm) = RMSNorm.backward(dMLPIn, x: h, weight: postNorm, inverseRMS: postInverse, adding: dy)
            grads["post_attention_layernorm.weight"] = dPostNorm
            let (dAttentionIn, attentionGrads) = try attentionBackward(dh)
            for (name, gradient) in attentionGrads { grads["self_attn." + name] = gradient }
            let (dx, dInputNorm) = RMSNorm.backward(dAttentionIn, x: x, weight: inputNorm, inverseRMS: inputInverse, adding: dh)
            grads["input_layernorm.weight"] = dInputNorm
            return (dx, grads)
        })
    }
}
