import CCA
import Testing

@Suite struct ConfigValidationTests {
    @Test func badCCAConfigsThrowTheirOwnError() {
        #expect(throws: ConfigError.headsDoNotDivide(queryHeads: 6, keyValueHeads: 4)) {
            try CCA<Float>(config: CCAConfig(hiddenSize: 64, queryHeads: 6, keyValueHeads: 4, headDim: 8))
        }
        #expect(throws: ConfigError.oddValueWidth(valueWidth: 3)) {
            try CCA<Float>(config: CCAConfig(hiddenSize: 64, queryHeads: 1, keyValueHeads: 1, headDim: 3, rope: RoPEConfig(fraction: 0)))
        }
        #expect(throws: ConfigError.oddRotaryWidth(headDim: 10, fraction: 0.5, rotaryDim: 5)) {
            try CCA<Float>(config: CCAConfig(hiddenSize: 64, queryHeads: 2, keyValueHeads: 2, headDim: 10))
        }
        #expect(throws: ConfigError.convolutionCount(3)) {
            try CCA<Float>(config: CCAConfig(hiddenSize: 64, queryHeads: 2, keyValueHeads: 2, headDim: 8, convolutions: 3))
        }
        #expect(throws: ConfigError.notPositive(name: "num_key_value_heads", value: 0)) {
            try CCA<Float>(config: CCAConfig(hiddenSize: 64, queryHeads: 2, keyValueHeads: 0, headDim: 8))
        }
        #expect(throws: ConfigError.ropeFractionOutOfRange(1.5)) {
            try GQA<Float>(config: GQAConfig(hiddenSize: 64, queryHeads: 2, keyValueHeads: 2, rope: RoPEConfig(fraction: 1.5)))
        }
    }

    @Test func comparisonShapesThatDoNotDivideAreRefused() {
        #expect(throws: ConfigError.self) { try ComparisonShapes(hiddenSize: 2048, headDim: 128, ccaCompression: 3).cca() }
        #expect(throws: ConfigError.self) { try ComparisonShapes(hiddenSize: 2048, headDim: 128, gqaGroup: 5).gqa() }
    }

    @Test func wrongInputWidthAndMaskShapeAreShapeErrors() throws {
        let layer = try CCA<Float>(config: CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8))
        #expect(throws: ShapeError.mismatch(name: "input x", expected: [1, 3, 32], actual: [1, 3, 31])) {
            try layer.forward(Tensor<Float>(zeros: [1, 3, 31]))
        }
        #expect(throws: ShapeError.rank(name: "input x", expected: 3, actual: [3, 32])) { try layer.forward(Tensor<Float>(zeros: [3, 32])) }
        #expect(throws: ShapeError.mismatch(name: "mask", expected: [1, 3], actual: [1, 4])) {
            try layer.forward(Tensor<Float>(zeros: [1, 3, 32]), mask: Tensor<Float>(zeros: [1, 4], value: 1))
        }
    }

    @Test func missingOrMisshapedWeightsAreNamed() throws {
        let config = CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8)
        var weights = try CCA<Float>(config: config).weights
        weights["qk_norm.temp"] = nil
        #expect(throws: WeightError.self) { try CCA<Float>(config: config, weights: weights) }
        do {
            _ = try CCA<Float>(config: config, weights: weights)
        } catch let error as WeightError {
            #expect(error.description.contains("qk_norm.temp"))
        }
        weights["qk_norm.temp"] = Tensor<Float>(zeros: [3])
        #expect(throws: WeightError.wrongShape(name: "qk_norm.temp", expected: [2], actual: [3])) {
            try CCA<Float>(config: config, weights: weights)
        }
    }

    @Test func jsonConfigsParseWithDefaultsAndRejectMistakes() throws {
        func parse(_ text: String) throws -> any AttentionConfig {
            try LayerConfigFile.parse(jsonText: text)
        }
        guard let zaya = try parse("{}") as? CCAConfig else { Issue.record("default must be CCA"); return }
        #expect(zaya == CCAConfig())
        guard let gqa = try parse(#"{"attention": "gqa", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "partial_rotary_factor": 1}"#) as? GQAConfig else {
            Issue.record("expected GQA"); return
        }
        #expect(gqa == GQAConfig(hiddenSize: 64, queryHeads: 4, keyValueHeads: 2, headDim: 16, rope: RoPEConfig(theta: 5_000_000, fraction: 1)))
        #expect(throws: ConfigFileError.self) { try parse(#"{"partial_rotary_fator": 1}"#) }
        #expect(throws: ConfigFileError.wrongType(path: "config", key: "hidden_size", expected: "a whole number")) {
            try parse(#"{"hidden_size": 64.5}"#)
        }
        #expect(throws: ConfigError.unknownAttention("flash")) { try parse(#"{"attention": "flash"}"#) }
        #expect(throws: ConfigError.invalidValue(name: "temperature", value: "cubic", expected: "linear or exp")) {
            try parse(#"{"temperature": "cubic"}"#)
        }
        #expect(throws: ConfigError.headsDoNotDivide(queryHeads: 8, keyValueHeads: 3)) { try parse(#"{"num_key_value_heads": 3}"#) }
        #expect(throws: ConfigFileError.duplicateKey(path: "config", key: "head_dim")) { try parse(#"{"head_dim": 64, "head_dim": 128}"#) }
        #expect(throws: ConfigFileError.self) { try parse(#"{"head_dim": 64"#) }
        #expect(throws: ConfigFileError.notAnObject(path: "config")) { try parse("[1, 2]") }
    }
}
