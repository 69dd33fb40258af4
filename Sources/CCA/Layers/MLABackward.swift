/// Training form of ``MLA``: forward that keeps activations, and backward.
public struct TrainableMLA<Scalar: TrainingScalar>: DifferentiableAttention {
    public let config: MLAConfig
    public let weights: [String: TrainingTensor<Scalar>]
    let rotary: RotaryEmbedding

    public var hiddenSize: Int { config.hiddenSize }

    public init(config: MLAConfig, weights: [String: TrainingTensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(MLA.weightShapes(config))
        rotary = try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim)
    }

    /// The training form of an inference layer, with the same weights.
    public init(_ layer: MLA) throws { try self.init(config: layer.config, weights: layer.weights.training()) }

    public struct Activations {
        var x: [Scalar], compressedQuery: [Scalar], compressedKeyValue: [Scalar]
        var queryNorm: RMSNormTraining<Scalar>.Activations, keyValueNorm: RMSNormTraining<Scalar>.Activations
        var q: [Scalar], k: [Scalar], v: [Scalar], probabilities: [Scalar], attended: [Scalar]
        var batch: Int, length: Int
    }

    func attention(_ batch: Int, _ length: Int) -> CausalAttentionTraining {
        CausalAttentionTraining(batch: batch, length: length, queryHeads: config.heads, keyValueHeads: config.heads,
                                keyDim: config.queryHeadDim, valueDim: config.valueHeadDim)
    }
    var scale: Scalar { 1 / Scalar(config.queryHeadDim).squareRoot() }
    var queryNorm: RMSNormTraining<Scalar> { RMSNormTraining(width: config.queryRank, epsilon: Scalar(config.normEpsilon)) }
    var keyValueNorm: RMSNormTraining<Scalar> { RMSNormTraining(width: config.keyValueRank, epsilon: Scalar(config.normEpsilon)) }

    public func forwardForTraining(_ x: TrainingTensor<Scalar>) -> (y: TrainingTensor<Scalar>, activations: Activations) {
        let c = config
        let (b, s, h, dn, dr, dv) = (x.shape[0], x.shape[1], c.heads, c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim)
        let (rows, dqk) = (b * s, dn + dr)
        let queryInput = LinearTraining.forward(x.storage, rows: rows, weight: weights["q_a_proj.weight"]!)
        let (compressedQuery, queryNormSaved) = queryNorm.forward(queryInput, rows: rows,
                                                                  weight: weights["q_a_layernorm.weight"]!.storage)
        var q = LinearTraining.forward(compressedQuery, rows: rows, weight: weights["q_b_proj.weight"]!)
        rotary.rotate(&q, offset: dn, rows: rows, length: s, rowStride: h * dqk, heads: h, headStride: dqk)

        let keyValueInput = LinearTraining.forward(x.storage, rows: rows, weight: weights["kv_a_proj_with_mqa.weight"]!)
        let (compressedKeyValue, keyValueNormSaved) = keyValueNorm.forward(
            keyValueInput, rows: rows, weight: weights["kv_a_layernorm.weight"]!.storage, stride: c.keyValueRank + dr)
        let keyValue = LinearTraining.forward(compressedKeyValue, rows: rows, weight: weights["kv_b_proj.weight"]!)
        var ropeKey = [Scalar](repeating: 0, count: rows * dr)
        for row in 0..<rows {
            for i in 0..<dr { ropeKey[row * dr + i] = keyValueInput[row * (c.keyValueRank + dr) + c.keyValueRank + i] }
        }
        rotary.rotate(&ropeKey, rows: rows, length: s, rowStride: dr, heads: 1, headStride: dr)
        // Every head's key: its own no-PE part, then the shared rotary key.
        var k = [Scalar](repeating: 0, count: rows * h * dqk), v = [Scalar](repeating: 0, count: rows * h * dv)
        for row in 0..<rows {
            for head in 0..<h {
                let index = row * h + head, kvBase = index * (dn + dv)
                for i in 0..<dn { k[index * dqk + i] = keyValue[kvBase + i] }
                for i in 0..<dr { k[index * dqk + dn + i] = ropeKey[row * dr + i] }
                for i in 0..<dv { v[index * dv + i] = keyValue[kvBase + dn + i] }
            }
        }
        let (attended, probabilities) = attention(b, s).forward(q: q, k: k, v: v, scale: scale)
        let y = LinearTraining.forward(attended, rows: rows, weight: weights["o_proj.weight"]!)
        return (TrainingTensor(shape: x.shape, storage: y),
                Activations(x: x.storage, compressedQuery: compressedQuery, compressedKeyValue: compressedKeyValue,
                            queryNorm: queryNormSaved, keyValueNorm: keyValueNormSaved, q: q, k: k, v: v,
                            probabilities: probabilities, attended: attended, batch: b, length: s))
    }

    public func backward(_ dy: TrainingTensor<Scalar>, _ saved: Activations)
        -> (dx: TrainingTensor<Scalar>, grads: [String: TrainingTensor<Scalar>]) {
        let c = config
        let (s, h, dn, dr, dv) = (saved.length, c.heads, c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim)
        let (rows, dqk) = (saved.batch * s, dn + dr)
        var grads: [String: TrainingTensor<Scalar>] = [:]
        var dAttended = [Scalar](repeating: 0, count: saved.attended.count)
        grads["o_proj.weight"] = LinearTraining.backward(dy.storage, x: saved.attended, rows: rows,
                                                         weight: weights["o_proj.weight"]!, dx: &dAttended)
        var (dq, dk, dValue) = attention(saved.batch, s).backward(
            dOut: dAttended, q: saved.q, k: saved.k, v: saved.v, probabilities: saved.probabilities, scale: scale)

        // Query path: undo RoPE, q_b, RMSNorm, q_a.
        rotary.rotate(&dq, offset: dn, rows: rows, length: s, rowStride: h * dqk, heads: h, headStride: dqk, inverse: true)
        var dCompressedQuery = [Scalar](repeating: 0, count: saved.compressedQuery.count)
        grads["q_b_proj.weight"] = LinearTraining.backward(dq, x: saved.compressedQuery, rows: rows,
                                                           weight: weights["q_b_proj.weight"]!, dx: &dCompressedQuery)
        let (dQueryInput, dQueryNorm) = queryNorm.backward(dCompressedQuery, weight: weights["q_a_layernorm.weight"]!.storage,
                                                           saved.queryNorm)
        grads["q_a_layernorm.weight"] = TrainingTensor(shape: [c.queryRank], storage: dQueryNorm)
        var dx = [Scalar](repeating: 0, count: saved.x.count)
        grads["q_a_proj.weight"] = LinearTraining.backward(dQueryInput, x: saved.x, rows: rows,
                                                           weight: weights["q_a_proj.weight"]!, dx: &dx)

        // Key/value path: split dk into the per-head no-PE part and the shared rotary key, gather dv.
        var dKeyValue = [Scalar](repeating: 0, count: rows * h * (dn + dv))
        var dRopeKey = [Scalar](repeating: 0, count: rows * dr)
        for row in 0..<rows {
            for head in 0..<h {
                let index = row * h + head, kvBase = index * (dn + dv)
                for i in 0..<dn { dKeyValue[kvBase + i] = dk[index * dqk + i] }
                for i in 0..<dr { dRopeKey[row * dr + i] += dk[index * dqk + dn + i] }
                for i in 0..<dv { dKeyValue[kvBase + dn + i] = dValue[index * dv + i] }
            }
        }
        rotary.rotate(&dRopeKey, rows: rows, length: s, rowStride: dr, heads: 1, headStride: dr, inverse: true)
        var dCompressedKeyValue = [Scalar](repeating: 0, count: saved.compressedKeyValue.count)
        grads["kv_b_proj.weight"] = LinearTraining.backward(dKeyValue, x: saved.compressedKeyValue, rows: rows,
                                                            weight: weights["kv_b_proj.weight"]!, dx: &dCompressedKeyValue)
        let (dNormInput, dKeyValueNorm) = keyValueNorm.backward(
            dCompressedKeyValue, weight: weights["kv_a_layernorm.weight"]!.storage, saved.keyValueNorm)
        grads["kv_a_layernorm.weight"] = TrainingTensor(shape: [c.keyValueRank], storage: dKeyValueNorm)
        let width = c.keyValueRank + dr
        var dKeyValueInput = [Scalar](repeating: 0, count: rows * width)
        for row in 0..<rows {
            for i in 0..<c.keyValueRank { dKeyValueInput[row * width + i] = dNormInput[row * c.keyValueRank + i] }
            for i in 0..<dr { dKeyValueInput[row * width + c.keyValueRank + i] = dRopeKey[row * dr + i] }
        }
        grads["kv_a_proj_with_mqa.weight"] = LinearTraining.backward(
            dKeyValueInput, x: saved.x, rows: rows, weight: weights["kv_a_proj_with_mqa.weight"]!, dx: &dx, accumulate: true)
        return (TrainingTensor(shape: dy.shape, storage: dx), grads)
    }
}
