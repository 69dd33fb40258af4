@testable import CCA
import Foundation
import Testing

/// Sizes whose products would overflow, files far larger than their kind can be, and inputs that name the
/// wrong thing: each is refused with a message saying what to change, before any large allocation.
@Suite struct InputLimitTests {
    @Test func configsWhoseSizesOverflowAreRefused() {
        // 65536 · 2^48 wraps to 0 in Int: the product check must see it before any shape is computed.
        let wrapping = #"{"attention": "cca", "num_attention_heads": 65536, "num_key_value_heads": 65536, "head_dim": 281474976710656}"#
        #expect(throws: ConfigError.invalidValue(name: "head_dim", value: "281474976710656", expected: "at most 16777216")) {
            try LayerConfigFile.parse(jsonText: wrapping)
        }
        let huge = GQAConfig(hiddenSize: 1 << 24, queryHeads: 1 << 12, keyValueHeads: 1 << 12, headDim: 1 << 12)
        #expect(throws: ConfigError.invalidValue(name: "weight 'k_proj.weight'", value: "shape [16777216, 16777216]",
                                                 expected: "at most 4294967296 elements; choose smaller sizes")) { try huge.validate() }
        var model = LanguageModelConfig.preset(.tiny, attention: .cca)
        model.normEpsilon = -1
        #expect(throws: ConfigError.invalidValue(name: "norm_epsilon", value: "-1.0", expected: "a small positive number such as 1e-6")) {
            try model.validate()
        }
        model = LanguageModelConfig.preset(.tiny, attention: .cca)
        model.layers = 1_000_000
        #expect(throws: ConfigError.invalidValue(name: "layers", value: "1000000", expected: "at most 4096")) { try model.validate() }
    }

    @Test func comparisonShapesAreChecked() {
        #expect(throws: ConfigError.notPositive(name: "head dimension d", value: 0)) { try ComparisonShapes(headDim: 0).cost(.mha) }
        #expect(throws: ConfigError.notPositive(name: "hidden size E", value: -2048)) { try ComparisonShapes(hiddenSize: -2048).cost(.cca) }
        let message = ConfigError.invalidValue(name: "hidden size E", value: "1000",
                                               expected: "a multiple of the head dimension d = 128, so that E/d heads are whole")
        #expect(throws: message) { try ComparisonShapes(hiddenSize: 1000).cost(.gqa) }
        #expect(!"\(message)".contains("heads;"))
    }

    static func sparseFile(_ path: String, size: UInt64, prefix: [UInt8] = []) throws {
        FileManager.default.createFile(atPath: path, contents: Data(prefix))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: size)
        try handle.close()
    }

    @Test func oversizedFilesAreRefusedUnread() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.sparseFile(directory + "/config.json", size: 8 << 30)
        #expect(throws: ConfigFileError.unreadable(path: directory + "/config.json",
                                                   reason: "the file has 8589934592 bytes, more than the 1048576 allowed here; is it the right file?")) {
            try LayerConfigFile.load(path: directory + "/config.json")
        }
        // A valid header for 8 bytes of data, then 4 GB more: refused by the layout check before the data is read.
        let header = Array(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        let prefix = (0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) } + header
        try Self.sparseFile(directory + "/big.safetensors", size: 4 << 30, prefix: prefix)
        #expect { try SafeTensors(contentsOf: directory + "/big.safetensors") } throws: { error in
            (error as? SafeTensorsError)?.kind == .layout
        }
    }

    /// A CCA layer written as `cca init-layer` writes it, with `change` applied to the weights.
    static func layerFiles(_ directory: String, change: (inout [String: Tensor<Float>]) -> Void = { _ in }) throws -> any AttentionConfig {
        let config = CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8)
        try writeAtomically(config.fileJSON, to: directory + "/config.json")
        var weights = try config.initialWeights(seed: 1)
        change(&weights)
        try SafeTensors.write(weights, to: directory + "/weights.safetensors")
        return config
    }

    @Test func missingWeightsAreListedAllAtOnce() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try Self.layerFiles(directory) { $0 = ["unrelated": Tensor<Float>(zeros: [1])] }
        #expect(throws: WeightError.incomplete(missing: config.weightShapes, available: ["unrelated"])) {
            try LayerFiles(configPath: directory + "/config.json", weightsPath: directory + "/weights.safetensors")
        }
        let text = "\(WeightError.incomplete(missing: config.weightShapes, available: ["unrelated"]))"
        for (name, shape) in config.weightShapes { #expect(text.contains("\(name) \(shape)")) }
    }

    @Test func aMissingInputIsNotCalledAWeight() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SafeTensors.write(["y": Tensor<Float>(zeros: [1, 2, 32])], to: directory + "/input.safetensors")
        #expect(throws: SafeTensorsError(kind: .missingTensor, path: directory + "/input.safetensors", tensor: "x",
                                         message: "missing; a layer input file holds x [B, S, E] and optionally mask [B, S], this one has y")) {
            try LayerFiles.readInput(directory + "/input.safetensors")
        }
    }

    @Test func chunkLengthsThatOverflowAreRefused() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Self.layerFiles(directory)
        let files = try LayerFiles(configPath: directory + "/config.json", weightsPath: directory + "/weights.safetensors")
        let x = Tensor<Float>(randomNormal: [1, 14, 32], seed: 2)
        for chunks in [[Int.max, Int.max, 16], [7, 1], [15, -1]] {
            #expect(throws: LayerFilesError.chunksDoNotCover(chunks: chunks, length: 14)) { try files.forward(x, mask: nil, chunkLengths: chunks) }
        }
        #expect("\(LayerFilesError.chunksDoNotCover(chunks: [Int.max, Int.max, 16], length: 14))".contains("add up to more than"))
        #expect(try files.forward(x, mask: nil, chunkLengths: [7, 1, 1, 5]).relativeError(to: files.forward(x, mask: nil)) < 1e-5)
    }

    @Test func layerConfigFilesRoundTrip() throws {
        for kind in AttentionKind.allCases {
            let config = try ComparisonShapes(hiddenSize: 256, headDim: 32).config(kind)
            #expect(try LayerConfigFile.parse(jsonBytes: config.fileJSON, source: "written").fileJSON == config.fileJSON)
        }
    }
}
