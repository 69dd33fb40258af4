import CCA
import Testing

/// Every layer against the float64 reference on random weights and inputs.
@Suite struct LayerReferenceTests {
    static let tolerance: Float = 1e-5

    struct CCACase: CustomStringConvertible, Sendable {
        var batch: Int, length: Int, hidden: Int, queryHeads: Int, keyValueHeads: Int, headDim: Int
        var fraction = 1.0, temperature = TemperatureMode.linear, convolutions = 2, qkMean = true, valueShift = true
        var description: String {
            "B\(batch) S\(length) E\(hidden) Hq\(queryHeads) Hkv\(keyValueHeads) d\(headDim) rope\(fraction) \(temperature) conv\(convolutions) mean\(qkMean) shift\(valueShift)"
        }
        var config: CCAConfig {
            CCAConfig(hiddenSize: hidden, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: headDim,
                      rope: RoPEConfig(theta: 10_000, fraction: fraction), temperature: temperature,
                      convolutions: convolutions, qkMean: qkMean, valueShift: valueShift)
        }
    }

    static let ccaCases: [CCACase] = [
        CCACase(batch: 1, length: 1, hidden: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8),
        CCACase(batch: 1, length: 7, hidden: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8, fraction: 0.5),
        CCACase(batch: 2, length: 9, hidden: 48, queryHeads: 4, keyValueHeads: 2, headDim: 8, temperature: .exp),
        CCACase(batch: 3, length: 5, hidden: 32, queryHeads: 4, keyValueHeads: 1, headDim: 8, fraction: 0.5),
        CCACase(batch: 2, length: 70, hidden: 32, queryHeads: 4, keyValueHeads: 1, headDim: 4, temperature: .exp),
        CCACase(batch: 1, length: 6, hidden: 64, queryHeads: 8, keyValueHeads: 2, headDim: 8, fraction: 0.5),
        CCACase(batch: 2, length: 8, hidden: 32, queryHeads: 2, keyValueHeads: 1, headDim: 16, fraction: 0.5),
        CCACase(batch: 2, length: 6, hidden: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8, convolutions: 0),
        CCACase(batch: 2, length: 6, hidden: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8, convolutions: 1),
        CCACase(batch: 2, length: 6, hidden: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8, qkMean: false),
        CCACase(batch: 2, length: 6, hidden: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8, valueShift: false),
        CCACase(batch: 1, length: 5, hidden: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8, convolutions: 0, qkMean: false, valueShift: false),
        // Long enough that the prologue's row loops (convolution, QK-mean, normalisation, RoPE) split over the cores.
        CCACase(batch: 2, length: 300, hidden: 64, queryHeads: 4, keyValueHeads: 4, headDim: 16, temperature: .exp),
    ]

    @Test(arguments: ccaCases)
    func ccaMatchesReference(_ testCase: CCACase) throws {
        let layer = try CCA<Float>(config: testCase.config, seed: 11)
        let x = Tensor<Float>(randomNormal: [testCase.batch, testCase.length, testCase.hidden], seed: 12)
        let y = try layer.forward(x)
        let expected = Reference.cca(x, weights: layer.weights, config: testCase.config)
        #expect(y.shape == x.shape)
        #expect(y.relativeError(to: expected) < Self.tolerance, "\(testCase)")
    }

    @Test(arguments: [(1, 1, 4, 4), (2, 7, 4, 2), (3, 5, 4, 1), (1, 9, 8, 2)])
    func gqaMatchesReference(batch: Int, length: Int, queryHeads: Int, keyValueHeads: Int) throws {
        for fraction in [1.0, 0.5] {
            let config = GQAConfig(hiddenSize: 32, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: 8,
                                   rope: RoPEConfig(theta: 10_000, fraction: fraction))
            let layer = try GQA<Float>(config: config, seed: 3)
            let x = Tensor<Float>(randomNormal: [batch, length, 32], seed: 4)
            let expected = Reference.gqa(x, weights: layer.weights, config: config)
            #expect(try layer.forward(x).relativeError(to: expected) < Self.tolerance)
        }
    }

    @Test func mhaIsGQAWithEqualHeads() throws {
        let mha = try GQA<Float>(config: .mha(hiddenSize: 32, heads: 4), seed: 5)
        let x = Tensor<Float>(randomNormal: [2, 6, 32], seed: 6)
        let expected = Reference.gqa(x, weights: mha.weights, config: mha.config)
        #expect(try mha.forward(x).relativeError(to: expected) < Self.tolerance)
        #expect(mha.parameterCount == 4 * 32 * 32)
    }

    @Test(arguments: [(1, 1), (2, 7), (1, 66)])
    func mlaMatchesReference(batch: Int, length: Int) throws {
        let config = MLAConfig(hiddenSize: 32, heads: 4, queryRank: 16, keyValueRank: 8, noPEHeadDim: 8,
                               ropeHeadDim: 4, valueHeadDim: 6)
        let layer = try MLA<Float>(config: config, seed: 7)
        let x = Tensor<Float>(randomNormal: [batch, length, 32], seed: 8)
        let expected = Reference.mla(x, weights: layer.weights, config: config)
        #expect(try layer.forward(x).relativeError(to: expected) < Self.tolerance)
    }

    @Test func maskedForwardMatchesReference() throws {
        let config = CCAConfig(hiddenSize: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8)
        let layer = try CCA<Float>(config: config, seed: 9)
        let x = Tensor<Float>(randomNormal: [2, 7, 32], seed: 10)
        let mask = try Tensor<Float>(shape: [2, 7], storage: [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0])
        let expected = Reference.cca(x, weights: layer.weights, config: config, mask: mask)
        #expect(try layer.forward(x, mask: mask).relativeError(to: expected) < Self.tolerance)
        let gqaConfig = GQAConfig(hiddenSize: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8)
        let gqa = try GQA<Float>(config: gqaConfig, seed: 9)
        #expect(try gqa.forward(x, mask: mask).relativeError(to: Reference.gqa(x, weights: gqa.weights, config: gqaConfig, mask: mask)) < Self.tolerance)
    }
}
