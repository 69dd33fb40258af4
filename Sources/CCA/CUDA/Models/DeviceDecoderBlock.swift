/// One pre-norm block of ``DeviceLanguageModel`` on the GPU, as ``DecoderBlock`` computes it on the CPU:
/// `h = x + attention(RMSNorm(x))`, then `y = h + MLP(RMSNorm(h))` with the SwiGLU MLP.
///
/// It reads its weights in place from the model's ``DeviceParameters`` (matrices in the compute precision,
/// norms in float32) and its backward pass adds every weight's gradient into the views of the gradient
/// buffer it was built with.
struct DeviceDecoderBlock: Sendable {
    let attention: any DeviceAttentionLayer
    /// The attention layer's float32 gradients, under its own weight names.
    let attentionGradients: DeviceWeights
    let inputNorm: DeviceTensor, postNorm: DeviceTensor
    let gate: DeviceTensor, up: DeviceTensor, down: DeviceTensor
    let gradients: Gradients
    let epsilon: Float
    /// The attention kind, for messages.
    let kind: AttentionKind

    /// The gradient views of the block's own (non-attention) weights.
    struct Gradients: Sendable {
        let inputNorm: DeviceTensor, postNorm: DeviceTensor
        let gate: DeviceTensor, up: DeviceTensor, down: DeviceTensor
    }

    /// The block whose weights are `weights` and gradients `gradients`, both under the names of one layer
    /// without its `layers.N.` prefix.
    /// - Throws: ``WeightError`` for a missing weight or one of the wrong shape or storage type;
    ///   ``CUDAError/unsupported(_:)`` for an attention kind without a GPU layer.
    init(config: LanguageModelConfig, weights: DeviceWeights, gradients: DeviceWeights, context: CUDAContext) throws {
        let attentionConfig = config.attentionLayer()
        guard let deviceConfig = attentionConfig as? any DeviceAttentionConfig else {
            throw CUDAError.unsupported("\(config.attention.rawValue) attention has no GPU layer")
        }
        attention = try deviceConfig.deviceLayer(weights: weights.under("self_attn."), context: context)
        attentionGradients = gradients.under("self_attn.")
        try attentionGradients.requireFloat32(attentionConfig.weightShapes)
        let (e, i) = (config.hiddenSize, config.intermediateSize)
        let precision = weights.matrixPrecision
        inputNorm = try weights.weight("input_layernorm.weight", shape: [e], precision: .float32)
        postNorm = try weights.weight("post_attention_layernorm.weight", shape: [e], precision: .float32)
        gate = try weights.weight("mlp.gate_proj.weight", shape: [i, e], precision: precision)
        up = try weights.weight("mlp.up_proj.weight", shape: [i, e], precision: precision)
        down = try weights.weight("mlp.down_proj.weight", shape: [e, i], precision: precision)
        self.gradients = Gradients(
            inputNorm: try gradients.weight("input_layernorm.weight", shape: [e], precision: .float32),
            postNorm: try gradients.weight("post_attention_layernorm.weight", shape: [e], precision: .float32),
            gate: try gradients.weight("mlp.gate_proj.weight", shape: [i, e], precision: .float32),
            up: try gradients.weight("mlp.up_proj.weight", shape: [i, e], precision: .float32),
            down: try gradients.weight("mlp.down_proj.weight", shape: [e, i], precision: .float32))
        epsilon = config.normEpsilon
        kind = config.attention
    }

    /// The backward pass of one forward: `dy` `[B,S,E]` → `dx` `[B,S,E]`, adding every weight's gradient.
    typealias Backward = (_ dy: DeviceTensor) throws -> DeviceTensor

    /// The block's output for the input `stream` (`[B,S,E]`) and, with `keep`, its backward pass, which holds
    /// this forward's activations until it has run. `positions` (`[B·S]` int32 or nil) as
    /// ``DeviceAttentionLayer`` takes them. The output's last residual add is left pending, for the next norm
    /// to do in its own pass; the backward pass takes the gradient of the output's sum.
    func forward(_ stream: DeviceResidualStream, positions: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceResidualStream, backward: Backward?) {
        let width = gate.shape[0]
        let (x, normed, inputInverse) = try stream.normalized(weight: inputNorm, epsilon: epsilon, context: context)
        let (attended, attentionBackward) = try attention.forward(normed.reshaped(x.shape), keyValid: nil, positions: positions, keep: keep,
                                                                     context: context)
        let h = try context.empty(x.shape, x.precision)
        let (mlpIn, postInverse) = try RMSNorm.forward(x, adding: attended, into: h, weight: postNorm, epsilon: epsilon, context: context)
        // gate | up side by side, as SwiGLU reads them: one product where the two weights lie one after the
        // other (as DeviceParameters places them), else two.
        let gateUp = try context.empty([mlpIn.shape[0], 2 * width], x.precision)
        if let gateUpWeight = DeviceTensor.stacked([gate, up]) {
            try Linear.forward(mlpIn.matrix, gateUpWeight, into: gateUp.matrix, context: context)
        } else {
            try Linear.forward(mlpIn.matrix, gate, into: gateUp.columns(0..<width), context: context)
            try Linear.forward(mlpIn.matrix, up, into: gateUp.columns(width..<(2 * width)), context: context)
        }
        let hidden = try SwiGLU.forward(gateUp, context: context)
        let y = DeviceResidualStream(base: h, pending: try Linear.forward(hidden, down, context: context).reshaped(x.shape))
        guard keep else { return (y, nil) }
        guard let attentionBackward else { throw CUDAError.unsupported("the backward pass of \(kind.rawValue) attention (training it on the GPU)") }
        return (y, { [self] dy in
            let dHidden = try context.empty(hidden.shape, x.precision)
            try Linear.backward(dy.matrix, x: hidden.matrix, weight: down, dx: dHidden.matrix, accumulate: false,
                                dWeight: gradients.down, context: context)
            let dGateUp = try SwiGLU.backward(dHidden, gateUp: gateUp, context: context)
            let dMLPIn = try context.empty(mlpIn.shape, x.precision)
            if let gateUpWeight = DeviceTensor.stacked([gate, up]), let gateUpGradient = DeviceTensor.stacked([gradients.gate, gradients.up]) {
                try Linear.backward(dGateUp.matrix, x: mlpIn.matrix, weight: gateUpWeight, dx: dMLPIn.matrix, accumulate: false,
                                    dWeight: gateUpGradient, context: context)
            } else {
                try Linear.backward(dGateUp.columns(0..<width), x: mlpIn.matrix, weight: gate, dx: dMLPIn.matrix, accumulate: false,
                                    dWeight: gradients.gate, context: context)
                try Linear.backward(dGateUp.columns(width..<(2 * width)), x: mlpIn.matrix, weight: up, dx: dMLPIn.matrix,
                                    accumulate: true, dWeight: gradients.up, context: context)
            }
            // The residual passes dy straight through: dh = dy + d(post norm), added by the norm's backward.
            let dh = try context.empty(x.shape, x.precision)
            try RMSNorm.backward(dMLPIn, x: h.matrix, weight: postNorm, inverseRMS: postInverse, adding: dy,
                                 dWeight: gradients.postNorm, into: dh.matrix, context: context)
            let dNormed = try attentionBackward(dh, attentionGradients)
            let dx = try context.empty(x.shape, x.precision)
            try RMSNorm.backward(dNormed, x: x.matrix, weight: inputNorm, inverseRMS: inputInverse, adding: dh,
                                 dWeight: gradients.inputNorm, into: dx.matrix, context: context)
            return dx
        })
    }
}

/// The residual stream between the blocks of ``DeviceLanguageModel``: `base + pending`, the sum a block's
/// last residual add would write, left for the next RMSNorm to form in its own pass
/// (``RMSNorm/forward(_:adding:into:weight:epsilon:context:)``); or `base` alone when nothing is pending.
struct DeviceResidualStream: Sendable {
    let base: DeviceTensor
    let pending: DeviceTensor?

    /// The stream's value `x` (written into a new tensor when an add is pending, rounded to the storage type
    /// as the add alone would round it), and its RMSNorm `y` and inverse RMS, in one pass.
    func normalized(weight: DeviceTensor, epsilon: Float, context: CUDAContext) throws
        -> (x: DeviceTensor, y: DeviceTensor, inverseRMS: DeviceTensor) {
        guard let pending else {
            let (y, inverseRMS) = try RMSNorm.forward(base.matrix, weight: weight, epsilon: epsilon, context: context)
            return (base, y, inverseRMS)
        }
        let x = try context.empty(base.shape, base.precision)
        let (y, inverseRMS) = try RMSNorm.forward(base, adding: pending, into: x, weight: weight, epsilon: epsilon, context: context)
        return (x, y, inverseRMS)
    }
}
