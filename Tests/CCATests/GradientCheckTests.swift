@testable import CCA
import Testing

/// Analytic gradients of the training code against central finite differences, all in `Double`
/// through the same generic code that trains in `Float`.
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

    /// Checks `dx` and every weight gradient of a layer for the loss `Σ y ∘ R` with a fixed random `R`.
    static func checkLayer(shape: [Int], weights: [String: TrainingTensor<Double>],
                           make: @escaping ([String: TrainingTensor<Double>]) throws -> any DifferentiableAttention<Double>) throws {
        let x = TrainingTensor<Double>(Tensor(randomNormal: shape, seed: 21))
        let probe = Tensor(randomNormal: shape, seed: 22).storage.map(Double.init)
        func loss(_ layer: any DifferentiableAttention<Double>, _ x: TrainingTensor<Double>) -> Double {
            zip(layer.forwardForTraining(x).y.storage, probe).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let layer = try make(weights)
        let (_, backward) = layer.pullback(x)
        let (dx, grads) = backward(TrainingTensor(shape: shape, storage: probe))
        #expect(Set(grads.keys) == Set(weights.keys), "a gradient for every weight")
        let numericInput = numericGradient(x.storage) { loss(layer, TrainingTensor(shape: shape, storage: $0)) }
        #expect(relativeError(dx.storage, numericInput) < tolerance, "dx")
        for (name, weight) in weights.sorted(by: { $0.key < $1.key }) {
            let numeric = try numericGradient(weight.storage) { values in
                var changed = weights
                changed[name] = TrainingTensor(shape: weight.shape, storage: values)
                return loss(try make(changed), x)
            }
            let error = relativeError(grads[name]!.storage, numeric)
            #expect(error < tolerance, "\(name): relative error \(error)")
        }
    }

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
        let layer = try CCA(config: config, seed: 5)
        try Self.checkLayer(shape: [2, 5, 8], weights: layer.weights.training()) {
            try TrainableCCA(config: config, weights: $0)
        }
    }

    @Test(arguments: [GQAConfig(hiddenSize: 8, queryHeads: 4, keyValueHeads: 2, headDim: 4, rope: RoPEConfig(theta: 100, fraction: 0.5)),
                      GQAConfig(hiddenSize: 8, queryHeads: 2, keyValueHeads: 2, headDim: 4)])
    func gqaGradients(_ config: GQAConfig) throws {
        let layer = try GQA(config: config, seed: 6)
        try Self.checkLayer(shape: [2, 5, 8], weights: layer.weights.training()) {
            try TrainableGQA(config: config, weights: $0)
        }
    }

    @Test func mlaGradients() throws {
        let config = MLAConfig(hiddenSize: 8, heads: 2, queryRank: 6, keyValueRank: 4, noPEHeadDim: 2, ropeHeadDim: 2,
                               valueHeadDim: 3, ropeTheta: 100)
        let layer = try MLA(config: config, seed: 7)
        try Self.checkLayer(shape: [2, 4, 8], weights: layer.weights.training()) {
            try TrainableMLA(config: config, weights: $0)
        }
    }

    /// Below `eps` the QK norm is linear (`x·c/eps`): its gradient there must be that constant scale.
    @Test func l2NormClampGradient() {
        let x: [Double] = [3e-9, -4e-9, 1e-9, 0, 0.5, -0.25, 1, 2]
        let probe: [Double] = [0.3, -1.2, 0.7, 2, 0.1, 0.4, -0.6, 0.9]
        func loss(_ values: [Double]) -> Double {
            var y = values
            _ = L2NormalizationTraining.forward(&y, width: 4, target: 2)
            return zip(y, probe).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var y = x
        let norms = L2NormalizationTraining.forward(&y, width: 4, target: 2)
        let analytic = L2NormalizationTraining.backward(probe, x: x, norms: norms, width: 4, target: 2)
        let clamped = Self.numericGradient(Array(x[0..<4]), step: 1e-12) { loss($0 + x[4...]) }
        let smooth = Self.numericGradient(Array(x[4...])) { loss(x[0..<4] + $0) }
        #expect(Self.relativeError(Array(analytic[0..<4]), clamped) < Self.tolerance)
        #expect(Self.relativeError(Array(analytic[4...]), smooth) < Self.tolerance)
        #expect(abs(analytic[0] - 0.3 * 2 / Double(Normalization.l2Epsilon)) < 1e-3 * analytic[0])
    }
}

/// The `Float` training forward equals the inference forward, so training optimises the layer that runs.
@Suite struct TrainingForwardParityTests {
    static func check(_ layer: any AttentionLayer, _ trainable: any DifferentiableAttention<Float>) throws {
        let x = Tensor(randomNormal: [2, 9, layer.hiddenSize], seed: 31)
        let expected = try layer.forward(x)
        let actual = trainable.forwardForTraining(TrainingTensor(x)).y.tensor
        #expect(actual.relativeError(to: expected) < 1e-5)
    }

    @Test(arguments: GradientCheckTests.ccaConfigs)
    func cca(_ config: CCAConfig) throws {
        let layer = try CCA(config: config, seed: 3)
        try Self.check(layer, try TrainableCCA(layer))
    }

    @Test func gqaAndMLA() throws {
        let gqa = try GQA(config: GQAConfig(hiddenSize: 16, queryHeads: 4, keyValueHeads: 2), seed: 4)
        try Self.check(gqa, try TrainableGQA(gqa))
        let mla = try MLA(config: MLAConfig(hiddenSize: 16, heads: 2, queryRank: 8, keyValueRank: 6, noPEHeadDim: 4,
                                            ropeHeadDim: 4, valueHeadDim: 4), seed: 5)
        try Self.check(mla, try TrainableMLA(mla))
    }
}

/// `cca backward`'s library entry point: every weight gets a gradient, shapes are checked.
@Suite struct LayerBackwardTests {
    @Test func gradientsForEveryWeight() throws {
        let layer = try CCA(config: CCAConfig(hiddenSize: 16, queryHeads: 2, keyValueHeads: 1, headDim: 8), seed: 2)
        let x = Tensor(randomNormal: [1, 5, 16], seed: 3), dy = Tensor(randomNormal: [1, 5, 16], seed: 4)
        let (dx, grads) = try LayerBackward.run(layer, x: x, dy: dy)
        #expect(dx.shape == x.shape)
        #expect(grads.mapValues(\.shape) == layer.weights.mapValues(\.shape))
        #expect(throws: ShapeError.self) { try LayerBackward.run(layer, x: x, dy: Tensor(zeros: [1, 4, 16])) }
    }
}
