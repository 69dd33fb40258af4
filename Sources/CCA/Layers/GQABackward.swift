/// Training form of ``GQA`` (and so of ``MHA``): forward that keeps activations, and backward.
public struct TrainableGQA<Scalar: TrainingScalar>: DifferentiableAttention {
    public let config: GQAConfig
    public let weights: [String: TrainingTensor<Scalar>]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    public init(config: GQAConfig, weights: [String: TrainingTensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(GQA.weightShapes(config))
        rotary = try config.rope.embedding(headDim: config.headDim)
    }

    /// The training form of an inference layer, with the same weights.
    public init(_ layer: GQA) throws { try self.init(config: layer.config, weights: layer.weights.training()) }

    public struct Activations {
        var x: [Scalar], q: [Scalar], k: [Scalar], v: [Scalar], probabilities: [Scalar], attended: [Scalar]
        var batch: Int, length: Int
    }

    func attention(_ batch: Int, _ length: Int) -> CausalAttentionTraining {
        CausalAttentionTraining(batch: batch, length: length, queryHeads: config.queryHeads,
                                keyValueHeads: config.keyValueHeads, keyDim: config.headDim, valueDim: config.headDim)
    }
    var scale: Scalar { 1 / Scalar(config.headDim).squareRoot() }

    public func forwardForTraining(_ x: TrainingTensor<Scalar>) -> (y: TrainingTensor<Scalar>, activations: Activations) {
        let (b, s, d, hq, hkv) = (x.shape[0], x.shape[1], config.headDim, config.queryHeads, config.keyValueHeads)
        let rows = b * s
        var q = LinearTraining.forward(x.storage, rows: rows, weight: weights["q_proj.weight"]!)
        var k = LinearTraining.forward(x.storage, rows: rows, weight: weights["k_proj.weight"]!)
        let v = LinearTraining.forward(x.storage, rows: rows, weight: weights["v_proj.weight"]!)
        rotary.rotate(&q, rows: rows, length: s, rowStride: hq * d, heads: hq, headStride: d)
        rotary.rotate(&k, rows: rows, length: s, rowStride: hkv * d, heads: hkv, headStride: d)
        let (attended, probabilities) = attention(b, s).forward(q: q, k: k, v: v, scale: scale)
        let y = LinearTraining.forward(attended, rows: rows, weight: weights["o_proj.weight"]!)
        return (TrainingTensor(shape: x.shape, storage: y),
                Activations(x: x.storage, q: q, k: k, v: v, probabilities: probabilities, attended: attended, batch: b, length: s))
    }

    public func backward(_ dy: TrainingTensor<Scalar>, _ saved: Activations)
        -> (dx: TrainingTensor<Scalar>, grads: [String: TrainingTensor<Scalar>]) {
        let (b, s, d, hq, hkv) = (saved.batch, saved.length, config.headDim, config.queryHeads, config.keyValueHeads)
        let rows = b * s
        var grads: [String: TrainingTensor<Scalar>] = [:]
        var dAttended = [Scalar](repeating: 0, count: saved.attended.count)
        grads["o_proj.weight"] = LinearTraining.backward(dy.storage, x: saved.attended, rows: rows,
                                                         weight: weights["o_proj.weight"]!, dx: &dAttended)
        var (dq, dk, dv) = attention(b, s).backward(dOut: dAttended, q: saved.q, k: saved.k, v: saved.v,
                                                     probabilities: saved.probabilities, scale: scale)
        rotary.rotate(&dq, rows: rows, length: s, rowStride: hq * d, heads: hq, headStride: d, inverse: true)
        rotary.rotate(&dk, rows: rows, length: s, rowStride: hkv * d, heads: hkv, headStride: d, inverse: true)
        var dx = [Scalar](repeating: 0, count: saved.x.count)
        for (name, gradient, first) in [("q_proj.weight", dq, true), ("k_proj.weight", dk, false), ("v_proj.weight", dv, false)] {
            grads[name] = LinearTraining.backward(gradient, x: saved.x, rows: rows, weight: weights[name]!, dx: &dx,
                                                  accumulate: !first)
        }
        return (TrainingTensor(shape: dy.shape, storage: dx), grads)
    }
}
