import RealModule

/// Training form of ``CCA`` (CCGQA when `queryHeads > keyValueHeads`): forward that keeps activations,
/// and backward through every step of the spec, including the ablation switches.
public struct TrainableCCA<Scalar: TrainingScalar>: DifferentiableAttention {
    public let config: CCAConfig
    public let weights: [String: TrainingTensor<Scalar>]
    let rotary: RotaryEmbedding
    let convolution: CCAConvolutionTraining<Scalar>

    public var hiddenSize: Int { config.hiddenSize }

    public init(config: CCAConfig, weights: [String: TrainingTensor<Scalar>]) throws {
        try config.validate()
        self.config = config
        self.weights = try WeightDictionary(weights).take(CCA.weightShapes(config))
        rotary = try config.rope.embedding(headDim: config.headDim)
        convolution = CCAConvolutionTraining(count: config.convolutions, channels: config.convolutionChannels,
                                             headDim: config.headDim, weights: self.weights)
    }

    /// The training form of an inference layer, with the same weights.
    public init(_ layer: CCA) throws { try self.init(config: layer.config, weights: layer.weights.training()) }

    public struct Activations {
        var x: [Scalar]
        /// Pre-convolution `[q0 ; k0]` `[B·S, ct]` and conv A's output.
        var latents: [Scalar], depthwise: [Scalar]
        /// q and k before the L2 norm, their norms, and the normalised k before its temperature.
        var queryPre: [Scalar], keyPre: [Scalar], queryNorms: [Scalar], keyNorms: [Scalar], keyUnit: [Scalar]
        var q: [Scalar], k: [Scalar], v: [Scalar], probabilities: [Scalar], attended: [Scalar]
        var batch: Int, length: Int
    }

    func attention(_ batch: Int, _ length: Int) -> CausalAttentionTraining {
        CausalAttentionTraining(batch: batch, length: length, queryHeads: config.queryHeads,
                                keyValueHeads: config.keyValueHeads, keyDim: config.headDim, valueDim: config.headDim)
    }
    var scale: Scalar { 1 / Scalar(config.headDim).squareRoot() }
    var targetNorm: Scalar { Scalar(config.headDim).squareRoot() }
    /// The factor each KV head's k is multiplied by: `temp` or `exp(temp)`.
    var temperatures: [Scalar] {
        weights["qk_norm.temp"]!.storage.map { config.temperature == .exp ? Scalar.exp($0) : $0 }
    }

    public func forwardForTraining(_ x: TrainingTensor<Scalar>) -> (y: TrainingTensor<Scalar>, activations: Activations) {
        let (b, s, d) = (x.shape[0], x.shape[1], config.headDim)
        let (hq, hkv, eq, ek, ct, group) = (config.queryHeads, config.keyValueHeads, config.queryWidth, config.keyWidth,
                                            config.convolutionChannels, config.groupSize)
        let rows = b * s
        let q0 = LinearTraining.forward(x.storage, rows: rows, weight: weights["qkv_proj.q_proj.weight"]!)
        let k0 = LinearTraining.forward(x.storage, rows: rows, weight: weights["qkv_proj.k_proj.weight"]!)
        var latents = [Scalar](repeating: 0, count: rows * ct)
        for row in 0..<rows {
            for c in 0..<eq { latents[row * ct + c] = q0[row * eq + c] }
            for c in 0..<ek { latents[row * ct + eq + c] = k0[row * ek + c] }
        }
        let (mixed, depthwise) = convolution.forward(latents, batch: b, length: s)

        // QK-mean from the pre-convolution latents, in the inference path's order of operations.
        var queryPre = [Scalar](repeating: 0, count: rows * eq), keyPre = [Scalar](repeating: 0, count: rows * ek)
        for row in 0..<rows {
            let pre = row * ct
            for h in 0..<hq {
                for c in 0..<d {
                    let mean = config.qkMean ? (latents[pre + h * d + c] + latents[pre + eq + (h / group) * d + c]) / 2 : 0
                    queryPre[row * eq + h * d + c] = mixed[pre + h * d + c] + mean
                }
            }
            for j in 0..<hkv {
                for c in 0..<d {
                    var mean: Scalar = 0
                    if config.qkMean {
                        for h in (j * group)..<((j + 1) * group) { mean += latents[pre + h * d + c] }
                        mean = (mean / Scalar(group) + latents[pre + eq + j * d + c]) / 2
                    }
                    keyPre[row * ek + j * d + c] = mixed[pre + eq + j * d + c] + mean
                }
            }
        }
        var q = queryPre, keyUnit = keyPre
        let queryNorms = L2NormalizationTraining.forward(&q, width: d, target: targetNorm)
        let keyNorms = L2NormalizationTraining.forward(&keyUnit, width: d, target: targetNorm)
        let temperatures = self.temperatures
        var k = keyUnit
        for index in 0..<k.count { k[index] *= temperatures[(index / d) % hkv] }
        rotary.rotate(&q, rows: rows, length: s, rowStride: eq, heads: hq, headStride: d)
        rotary.rotate(&k, rows: rows, length: s, rowStride: ek, heads: hkv, headStride: d)

        // Values: [current ; delayed], the delayed half one token late (zero at position 0).
        let half = ek / 2
        let valueCurrent = LinearTraining.forward(x.storage, rows: rows, weight: weights["qkv_proj.v_proj_current.weight"]!)
        let valueDelayed = LinearTraining.forward(x.storage, rows: rows, weight: weights["qkv_proj.v_proj_delayed.weight"]!)
        var v = [Scalar](repeating: 0, count: rows * ek)
        for row in 0..<rows {
            for c in 0..<half { v[row * ek + c] = valueCurrent[row * half + c] }
            guard let source = delayedSource(row, length: s) else { continue }
            for c in 0..<half { v[row * ek + half + c] = valueDelayed[source * half + c] }
        }
        let (attended, probabilities) = attention(b, s).forward(q: q, k: k, v: v, scale: scale)
        let y = LinearTraining.forward(attended, rows: rows, weight: weights["o_proj.weight"]!)
        return (TrainingTensor(shape: x.shape, storage: y),
                Activations(x: x.storage, latents: latents, depthwise: depthwise, queryPre: queryPre, keyPre: keyPre,
                            queryNorms: queryNorms, keyNorms: keyNorms, keyUnit: keyUnit, q: q, k: k, v: v,
                            probabilities: probabilities, attended: attended, batch: b, length: s))
    }

    /// The row whose delayed value projection lands in `row`'s second value half, nil for zeros.
    func delayedSource(_ row: Int, length: Int) -> Int? {
        guard config.valueShift else { return row }
        return row % length == 0 ? nil : row - 1
    }

    public func backward(_ dy: TrainingTensor<Scalar>, _ saved: Activations)
        -> (dx: TrainingTensor<Scalar>, grads: [String: TrainingTensor<Scalar>]) {
        let (b, s, d) = (saved.batch, saved.length, config.headDim)
        let (hq, hkv, eq, ek, ct, group) = (config.queryHeads, config.keyValueHeads, config.queryWidth, config.keyWidth,
                                            config.convolutionChannels, config.groupSize)
        let rows = b * s
        var grads: [String: TrainingTensor<Scalar>] = [:]
        var dAttended = [Scalar](repeating: 0, count: saved.attended.count)
        grads["o_proj.weight"] = LinearTraining.backward(dy.storage, x: saved.attended, rows: rows,
                                                         weight: weights["o_proj.weight"]!, dx: &dAttended)
        var (dq, dk, dv) = attention(b, s).backward(dOut: dAttended, q: saved.q, k: saved.k, v: saved.v,
                                                     probabilities: saved.probabilities, scale: scale)
        rotary.rotate(&dq, rows: rows, length: s, rowStride: eq, heads: hq, headStride: d, inverse: true)
        rotary.rotate(&dk, rows: rows, length: s, rowStride: ek, heads: hkv, headStride: d, inverse: true)

        // Temperature: k = unit(k)·T[j] with T = temp (linear) or exp(temp).
        let temperatures = self.temperatures
        var dTemperature = [Scalar](repeating: 0, count: hkv)
        for index in 0..<dk.count {
            let j = (index / d) % hkv
            dTemperature[j] += dk[index] * saved.keyUnit[index]
            dk[index] *= temperatures[j]
        }
        if config.temperature == .exp { for j in 0..<hkv { dTemperature[j] *= temperatures[j] } }
        grads["qk_norm.temp"] = TrainingTensor(shape: [hkv], storage: dTemperature)
        let dQueryPre = L2NormalizationTraining.backward(dq, x: saved.queryPre, norms: saved.queryNorms, width: d, target: targetNorm)
        let dKeyPre = L2NormalizationTraining.backward(dk, x: saved.keyPre, norms: saved.keyNorms, width: d, target: targetNorm)

        // The convolutions see [dq ; dk]; the QK-mean skip path adds its share straight to the latents.
        var dMixed = [Scalar](repeating: 0, count: rows * ct)
        for row in 0..<rows {
            for c in 0..<eq { dMixed[row * ct + c] = dQueryPre[row * eq + c] }
            for c in 0..<ek { dMixed[row * ct + eq + c] = dKeyPre[row * ek + c] }
        }
        var (dLatents, convolutionGrads) = convolution.backward(dMixed, input: saved.latents, depthwise: saved.depthwise,
                                                                batch: b, length: s)
        grads.merge(convolutionGrads) { $1 }
        if config.qkMean {
            // mq[h] = (q0[h] + k0[h/g])/2, mk[j] = (mean over group j of q0[h] + k0[j])/2.
            for row in 0..<rows {
                let pre = row * ct
                for h in 0..<hq {
                    for c in 0..<d {
                        let half = dQueryPre[row * eq + h * d + c] / 2
                        dLatents[pre + h * d + c] += half + dKeyPre[row * ek + (h / group) * d + c] / (2 * Scalar(group))
                        dLatents[pre + eq + (h / group) * d + c] += half
                    }
                }
                for c in 0..<ek { dLatents[pre + eq + c] += dKeyPre[row * ek + c] / 2 }
            }
        }
        var dq0 = [Scalar](repeating: 0, count: rows * eq), dk0 = [Scalar](repeating: 0, count: rows * ek)
        for row in 0..<rows {
            for c in 0..<eq { dq0[row * eq + c] = dLatents[row * ct + c] }
            for c in 0..<ek { dk0[row * ek + c] = dLatents[row * ct + eq + c] }
        }
        // Value halves: the delayed projection of row r fed row r + 1's second half.
        let half = ek / 2
        var dValueCurrent = [Scalar](repeating: 0, count: rows * half), dValueDelayed = dValueCurrent
        for row in 0..<rows {
            for c in 0..<half { dValueCurrent[row * half + c] = dv[row * ek + c] }
            guard let source = delayedSource(row, length: s) else { continue }
            for c in 0..<half { dValueDelayed[source * half + c] = dv[row * ek + half + c] }
        }
        var dx = [Scalar](repeating: 0, count: saved.x.count)
        let inputs: [(String, [Scalar])] = [("qkv_proj.q_proj.weight", dq0), ("qkv_proj.k_proj.weight", dk0),
                                            ("qkv_proj.v_proj_current.weight", dValueCurrent),
                                            ("qkv_proj.v_proj_delayed.weight", dValueDelayed)]
        for (index, (name, gradient)) in inputs.enumerated() {
            grads[name] = LinearTraining.backward(gradient, x: saved.x, rows: rows, weight: weights[name]!, dx: &dx,
                                                  accumulate: index > 0)
        }
        return (TrainingTensor(shape: dy.shape, storage: dx), grads)
    }
}
