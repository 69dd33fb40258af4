@testable import CCA
import Testing

/// Analytic gradients against central finite differences, all in `Double` through the same generic code
/// that runs in `Float`: every operation on its own, and every layer (every parameter and the input), on
/// plain batches, padded batches and packed documents.
@Suite struct GradientCheckTests {
    static let tolerance = 1e-6

    /// Max abs difference over max abs reference value.
    static func relativeError(_ analytic: [Double], _ numeric: [Double]) -> Double {
        let difference = zip(analytic, numeric).map { abs($0 - $1) }.max() ?? 0
        return difference / max(numeric.map(abs).max() ?? 0, 1e-300)
    }

    /// Central differences of `loss` with respect to every element of `values`.
    static func numericGradient(_ values: [Double], step: Double = 1e-5, loss: ([Double]) throws -> Double) rethrows -> [Double] {
        var probe = values
        return try values.indices.map { i in
            probe[i] = values[i] + step
            let plus = try loss(probe)
            probe[i] = values[i] - step
            let minus = try loss(probe)
            probe[i] = values[i]
            return (plus - minus) / (2 * step)
        }
    }

    /// `Σ y ∘ probe`: a loss whose gradient with respect to `y` is `probe`.
    static func projected(_ y: Tensor<Double>, _ probe: [Double]) -> Double { zip(y.storage, probe).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Checks `dx` and every weight gradient of the layer `config` makes, for the loss `Σ y ∘ R`.
    static func checkLayer(_ config: any AttentionConfig, rows: Int, layout: SequenceLayout, seed: UInt64) throws {
        let weights = try config.initialWeights(seed: seed).mapValues { Tensor<Double>($0) }
        let x = Tensor<Double>(Tensor<Float>(randomNormal: [rows, config.hiddenSize], seed: seed + 1))
        let probe = Tensor<Double>(Tensor<Float>(randomNormal: [rows, config.hiddenSize], seed: seed + 2)).storage
        func loss(_ weights: [String: Tensor<Double>], _ x: Tensor<Double>) throws -> Double {
            projected(try config.makeLayer(weights: weights).forward(x, layout: layout, states: nil, keep: false).y, probe)
        }
        let (_, backward) = try config.makeLayer(weights: weights).pullback(x, layout: layout)
        let (dx, grads) = try backward(Tensor(checked: x.shape, probe))
        #expect(Set(grads.keys) == Set(weights.keys), "a gradient for every weight")
        let numericInput = try numericGradient(x.storage) { try loss(weights, Tensor(checked: x.shape, $0)) }
        #expect(relativeError(dx.storage, numericInput) < tolerance, "\(config.kindName) dx")
        for (name, weight) in weights.sorted(by: { $0.key < $1.key }) {
            let numeric = try numericGradient(weight.storage) { values in
                var changed = weights
                changed[name] = Tensor(checked: weight.shape, values)
                return try loss(changed, x)
            }
            let error = relativeError(grads[name]!.storage, numeric)
            #expect(error < tolerance, "\(config.kindName) \(name): relative error \(error)")
        }
    }

    /// Two sequences of 5, the second with two padded tokens, and three packed documents (4, 1, 5).
    static let layouts: [SequenceLayout] = [
        try! SequenceLayout(batch: 2, length: 5),
        try! SequenceLayout(batch: 2, length: 5, keyValid: [true, true, true, true, true, false, true, true, false, true]),
        try! SequenceLayout(lengths: [4, 1, 5]),
    ]

    static let ccaConfigs: [CCAConfig] = [
        CCAConfig(hiddenSize: 8, queryHeads: 2, keyValueHeads: 2, headDim: 4, rope: RoPEConfig(theta: 100, fraction: 1)),
        CCAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, rope: RoPEConfig(theta: 100, fraction: 0.5)),
        CCAConfig(hiddenSize: 8, queryHeads: 2, keyValueHeads: 1, headDim: 4, rope: RoPEConfig(theta: 100, fraction: 0.5),
                  temperature: .exp),
        CCAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, convolutions: 1),
        CCAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, convolutions: 0),
        CCAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, qkMean: false),
        CCAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, valueShift: false),
        CCAConfig(hiddenSize: 8, queryHeads: 2, keyValueHeads: 2, headDim: 4, convolutions: 0, qkMean: false, valueShift: false),
    ]

    @Test(arguments: ccaConfigs)
    func ccaGradients(_ config: CCAConfig) throws {
        try Self.checkLayer(config, rows: 10, layout: Self.layouts[0], seed: 5)
    }

    @Test(arguments: [1, 2])
    func ccaGradientsWithPaddingAndPackedDocuments(_ layout: Int) throws {
        try Self.checkLayer(Self.ccaConfigs[1], rows: 10, layout: Self.layouts[layout], seed: 6)
    }

    @Test(arguments: 0..<3)
    func gqaGradients(_ layout: Int) throws {
        let config = GQAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, rope: RoPEConfig(theta: 100, fraction: 0.5))
        try Self.checkLayer(config, rows: 10, layout: Self.layouts[layout], seed: 7)
        if layout == 0 { try Self.checkLayer(GQAConfig.mha(hiddenSize: 8, heads: 2, headDim: 4), rows: 10, layout: Self.layouts[0], seed: 8) }
    }

    @Test(arguments: 0..<3)
    func mlaGradients(_ layout: Int) throws {
        let config = MLAConfig(hiddenSize: 8, heads: 2, queryRank: 6, keyValueRank: 4, noPEHeadDim: 2, ropeHeadDim: 2,
                               valueHeadDim: 3, ropeTheta: 100)
        try Self.checkLayer(config, rows: 10, layout: Self.layouts[layout], seed: 9)
    }

    /// The attention operation alone, with GQA sharing, a sliding window, a key mask, non-causal mode, and
    /// a row that sees no key.
    @Test(arguments: [(nil, true, false), (2, true, false), (nil, true, true), (nil, false, true)] as [(Int?, Bool, Bool)])
    func attentionGradients(window: Int?, causal: Bool, masked: Bool) throws {
        let heads = Attention.Heads(queryHeads: 4, keyValueHeads: 2, keyDim: 3, valueDim: 2, scale: 0.7, window: window, causal: causal)
        let valid = masked ? [false, true, true, false, true, true, true, true, false] : nil
        let layout = try SequenceLayout(lengths: [6, 3], keyValid: valid)
        func draw(_ shape: [Int], _ seed: UInt64) -> Tensor<Double> { Tensor(Tensor<Float>(randomNormal: shape, seed: seed)) }
        let (q, k, v) = (draw([9, 4, 3], 11), draw([9, 2, 3], 12), draw([9, 2, 2], 13))
        let probe = draw([9, 4, 2], 14).storage
        let saved = Attention.forward(q: q, k: k, v: v, layout: layout, heads: heads)
        let (dq, dk, dv) = Attention.backward(dOut: Tensor(checked: [9, 4, 2], probe), q: q, k: k, v: v, saved: saved,
                                              layout: layout, heads: heads)
        for (name, input, analytic) in [("q", q, dq), ("k", k, dk), ("v", v, dv)] {
            let numeric = Self.numericGradient(input.storage) { values in
                let changed = Tensor(checked: input.shape, values)
                let out = Attention.forward(q: name == "q" ? changed : q, k: name == "k" ? changed : k,
                                            v: name == "v" ? changed : v, layout: layout, heads: heads).out
                return Self.projected(out, probe)
            }
            #expect(Self.relativeError(analytic.storage, numeric) < Self.tolerance, "d\(name) window \(String(describing: window)) causal \(causal) masked \(masked)")
        }
    }

    /// Below `eps` the QK norm is linear (`x·c/eps`): its gradient there must be that constant scale; the
    /// temperature's gradient is checked too.
    @Test func l2NormClampAndTemperatureGradients() {
        let x: [Double] = [3e-9, -4e-9, 1e-9, 0, 0.5, -0.25, 1, 2]
        let probe: [Double] = [0.3, -1.2, 0.7, 2, 0.1, 0.4, -0.6, 0.9]
        let scales: [Double] = [1.5, 0.8]
        func loss(_ values: [Double], _ scales: [Double]) -> Double {
            Self.projected(L2Normalization.forward(Tensor(checked: [8], values), width: 4, target: 2, scales: scales).y, probe)
        }
        let (_, norms) = L2Normalization.forward(Tensor(checked: [8], x), width: 4, target: 2, scales: scales)
        let (dx, dScales) = L2Normalization.backward(Tensor(checked: [8], probe), x: Tensor(checked: [8], x), norms: norms,
                                                     width: 4, target: 2, scales: scales)
        let clamped = Self.numericGradient(Array(x[0..<4]), step: 1e-12) { loss($0 + x[4...], scales) }
        let smooth = Self.numericGradient(Array(x[4...])) { loss(x[0..<4] + $0, scales) }
        #expect(Self.relativeError(Array(dx.storage[0..<4]), clamped) < Self.tolerance)
        #expect(Self.relativeError(Array(dx.storage[4...]), smooth) < Self.tolerance)
        #expect(abs(dx.storage[0] - 0.3 * 2 * 1.5 / L2Normalization.epsilon) < 1e-3 * dx.storage[0])
        #expect(Self.relativeError(dScales!, Self.numericGradient(scales) { loss(x, $0) }) < Self.tolerance)
    }

    /// `cca backward`'s entry point: every weight gets a gradient of its shape; a wrong `dy` is refused.
    @Test func layerFilesBackwardGivesEveryWeightAGradient() throws {
        let layer = try CCA<Float>(config: CCAConfig(hiddenSize: 16, queryHeads: 2, keyValueHeads: 1, headDim: 8), seed: 2)
        let x = Tensor<Float>(randomNormal: [1, 5, 16], seed: 3), dy = Tensor<Float>(randomNormal: [1, 5, 16], seed: 4)
        let (dx, grads) = try layer.pullback(x, layout: SequenceLayout(batch: 1, length: 5)).backward(dy)
        #expect(dx.shape == x.shape)
        #expect(grads.mapValues(\.shape) == layer.weights.mapValues(\.shape))
        #expect(throws: ShapeError.self) {
            try layer.pullback(x, layout: SequenceLayout(batch: 1, length: 5)).backward(Tensor(zeros: [1, 4, 16]))
        }
    }
}
