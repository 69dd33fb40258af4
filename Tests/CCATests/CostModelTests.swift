import CCA
import Testing

@Suite struct CostModelTests {
    static let shapes = ComparisonShapes(hiddenSize: 256, headDim: 32, gqaGroup: 2, ccaCompression: 4,
                                         ccgqaQueryCompression: 2, ccgqaKeyValueCompression: 8,
                                         mlaQueryCompression: 2, mlaKeyValueCompression: 4, mlaRopeDim: 16)

    @Test(arguments: AttentionKind.allCases)
    func parameterCountMatchesTheImplementedLayer(_ method: AttentionKind) throws {
        let layer = try Self.shapes.layer(method)
        #expect(try Self.shapes.cost(method).parameters == layer.parameterCount)
    }

    @Test func ablatedCCAParameterCountsMatch() throws {
        for convolutions in 0...2 {
            var config = try Self.shapes.ccgqa()
            config.convolutions = convolutions
            #expect(config.cost.parameters == (try CCA<Float>(config: config)).parameterCount)
        }
    }

    /// The report's Table II in closed form (E, C, G as doubles), independent of the counting code.
    @Test func reducesToTheReportFormulas() throws {
        let (e, s, b) = (2048.0, 16384.0, 2.0)
        let shapes = ComparisonShapes()
        let mha = try shapes.cost(.mha), gqa = try shapes.cost(.gqa), cca = try shapes.cost(.cca), ccgqa = try shapes.cost(.ccgqa)
        #expect(Double(mha.parameters) == 4 * e * e)
        #expect(mha.forwardFLOPs(length: 16384, batch: 2, causal: false) == 8 * b * s * e * e + 4 * b * s * s * e)
        #expect(mha.forwardFLOPs(length: 16384, batch: 2, causal: true) == 8 * b * s * e * e + 2 * b * s * s * e)
        #expect(Double(mha.cacheElements(length: 16384, batch: 2)) == 2 * b * s * e)
        let g = 4.0
        #expect(Double(gqa.parameters) == 2 * e * e + 2 * e * e / g)
        #expect(gqa.forwardFLOPs(length: 16384, batch: 2, causal: false) == (1 + 1 / g) * 4 * b * s * e * e + 4 * b * s * s * e)
        #expect(Double(gqa.cacheElements(length: 16384, batch: 2)) == 2 * b * s * e / g)
        // CCA, C = 4: ct = 2E/C channels, conv FLOPs 2·B·S·(2ct + 2ct·d).
        let c = 4.0, d = 128.0, ct = 2 * e / c
        let conv = 2 * ct + 2 * ct * d + 2 * ct
        #expect(Double(cca.parameters) == 4 * e * e / c + conv + e / (c * d))
        #expect(cca.forwardFLOPs(length: 16384, batch: 2, causal: false)
            == (2 / c) * 4 * b * s * e * e + 4 * b * s * s * e / c + 2 * b * s * (2 * ct + 2 * ct * d))
        #expect(Double(cca.cacheElements(length: 16384, batch: 2)) == 2 * b * s * e / c)
        let (cq, ckv) = (2.0, 8.0), ct2 = e / cq + e / ckv
        #expect(Double(ccgqa.parameters) == 2 * e * e / cq + 2 * e * e / ckv + 2 * ct2 + 2 * ct2 * d + 2 * ct2 + e / (ckv * d))
        #expect(ccgqa.forwardFLOPs(length: 16384, batch: 2, causal: false)
            == (1 / cq + 1 / ckv) * 4 * b * s * e * e + 4 * b * s * s * e / cq + 2 * b * s * (2 * ct2 + 2 * ct2 * d))
    }

    /// With no RoPE key (dr → 0 is not a valid layer, so count it by hand) MLA's line is the report's.
    @Test func mlaMatchesTheReportPlusItsRoPEAndNormTerms() throws {
        let config = try ComparisonShapes().mla()
        let (e, cq, ckv, dr, h) = (2048.0, 2.0, 8.0, 64.0, 16.0)
        let reportParameters = e * e + 3 * e * e / ckv + 2 * e * e / cq
        let ropeAndNorms = (e / cq) * h * dr + e * dr + e / cq + e / ckv
        #expect(Double(config.cost.parameters) == reportParameters + ropeAndNorms)
        #expect(config.cost.cacheElementsPerToken == Int(e / ckv + dr))
    }
}
