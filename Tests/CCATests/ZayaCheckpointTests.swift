import CCA
import Foundation
import Testing

/// Damaged and unsupported ZAYA model directories: each is refused with an error naming the file and the
/// tensor at fault. Every case starts from a copy of a fixture directory and breaks one thing.
@Suite struct ZayaCheckpointTests {
    /// A copy of fixture `name` in a fresh temporary directory; `body` damages it and checks the load.
    static func withCopy(of name: String, _ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cca-zaya-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: ZayaFixture.path(name), toPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    /// Rewrites `path` (a safetensors file) through `edit` of its float tensors, plus the I64 tensors given.
    static func rewrite(_ path: String, int64: [(name: String, shape: [Int], values: [Int64])] = [],
                        _ edit: (inout [String: Tensor<Float>]) throws -> Void) throws {
        var tensors = try SafeTensors(contentsOf: path).floatTensors()
        try edit(&tensors)
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, int64: int64, to: path)
    }

    /// Rewrites a JSON file through `edit` of its top-level object.
    static func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    static func loadError(_ directory: String) -> Error? {
        do { _ = try ZayaModel(path: directory); return nil } catch { return error }
    }

    static let shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    static let index = "model.safetensors.index.json"

    /// The index's tensors of `shard`, sorted.
    static func tensors(in shard: String, directory: String) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/" + index))) as! [String: Any]
        return (object["weight_map"] as! [String: String]).filter { $0.value == shard }.keys.sorted()
    }

    @Test func missingShardNamesTheShardAndATensor() throws {
        try Self.withCopy(of: "zaya-sharded-bf16") { directory in
            let first = try Self.tensors(in: Self.shards[1], directory: directory)[0]
            try FileManager.default.removeItem(atPath: directory + "/" + Self.shards[1])
            #expect(Self.loadError(directory) as? ModelDirectoryError
                    == .missingShard(directory + "/" + Self.shards[1], tensor: first, index: directory + "/" + Self.index))
        }
    }

    @Test func tensorMissingFromItsShard() throws {
        try Self.withCopy(of: "zaya-sharded-bf16") { directory in
            let moved = try Self.tensors(in: Self.shards[0], directory: directory)[0]
            try Self.editJSON(directory + "/" + Self.index) { object in
                var map = object["weight_map"] as! [String: String]
                map[moved] = Self.shards[1]
                object["weight_map"] = map
            }
            #expect(Self.loadError(directory) as? ModelDirectoryError
                    == .tensorNotInShard(tensor: moved, shard: directory + "/" + Self.shards[1], index: directory + "/" + Self.index))
        }
    }

    @Test func truncatedShardNamesTheFile() throws {
        try Self.withCopy(of: "zaya-sharded-bf16") { directory in
            let path = directory + "/" + Self.shards[0]
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
            let error = Self.loadError(directory) as? SafeTensorsError
            #expect(error?.path == path)
            #expect(error?.description.contains("truncated") == true, "\(String(describing: error))")
        }
    }

    @Test func shardOutsideTheDirectoryIsRefused() throws {
        try Self.withCopy(of: "zaya-sharded-bf16") { directory in
            try Self.editJSON(directory + "/" + Self.index) { object in
                var map = object["weight_map"] as! [String: String]
                map["model.norm.weight"] = "../elsewhere.safetensors"
                object["weight_map"] = map
            }
            guard case .malformedIndex(let path, let problem)? = Self.loadError(directory) as? ModelDirectoryError else {
                Issue.record("expected a malformed index")
                return
            }
            #expect(path == directory + "/" + Self.index)
            #expect(problem.contains("../elsewhere.safetensors"))
        }
    }

    @Test func wrongShapeNamesTheTensorAndFile() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            let path = directory + "/model.safetensors"
            try Self.rewrite(path) { $0["model.norm.weight"] = Tensor(zeros: [33]) }
            #expect(Self.loadError(directory) as? ModelDirectoryError
                    == .wrongShape(tensor: "model.norm.weight", file: path, expected: [32], actual: [33]))
        }
    }

    @Test func wrongDTypeNamesTheTensorAndFile() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            let path = directory + "/model.safetensors"
            try Self.rewrite(path, int64: [("model.norm.weight", [32], [Int64](repeating: 1, count: 32))]) {
                $0["model.norm.weight"] = nil
            }
            #expect(Self.loadError(directory) as? ModelDirectoryError == .wrongDType(tensor: "model.norm.weight", file: path, dtype: "I64"))
        }
    }

    @Test func missingTensorIsNamed() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            let name = "model.layers.1.mlp.gate.balancing_biases"
            try Self.rewrite(directory + "/model.safetensors") { $0[name] = nil }
            #expect(Self.loadError(directory) as? ModelDirectoryError == .missingTensor(name, directory: directory))
        }
    }

    @Test func legacyWeightNamesNameTheConvention() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            let legacy = "model.layers.1.zaya_block.router.down_proj.weight"
            try Self.rewrite(directory + "/model.safetensors") { $0[legacy] = Tensor(zeros: [16, 32]) }
            let error = Self.loadError(directory) as? ZayaError
            #expect(error == .legacyWeights(directory: directory, tensor: legacy))
            #expect(error?.description.contains("Megatron") == true)
        }
    }

    @Test func legacyConfigNamesTheConvention() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            try Self.editJSON(directory + "/config.json") { $0["zaya_use_eda"] = true }
            #expect(Self.loadError(directory) as? ZayaError == .legacyConfig(file: directory + "/config.json", key: "zaya_use_eda"))
        }
    }

    @Test func otherModelsAndSettingsAreRefused() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            let config = directory + "/config.json"
            try Self.editJSON(config) { $0["model_type"] = "llama" }
            #expect(Self.loadError(directory) as? ZayaError == .notZaya(file: config, modelType: "llama"))
            try Self.editJSON(config) { object in
                object["model_type"] = "zaya"
                var rope = object["rope_parameters"] as! [String: Any]
                rope["hybrid"] = ["rope_type": "yarn", "rope_theta": 5e6, "factor": 4.0]
                object["rope_parameters"] = rope
            }
            #expect(Self.loadError(directory) as? ZayaError
                    == .unsupported(file: config, key: "rope_parameters.hybrid.rope_type", value: "yarn", supported: "default"))
            try Self.editJSON(config) { object in
                object["rope_parameters"] = nil
                object["num_experts_per_tok"] = 2
            }
            #expect(Self.loadError(directory) as? ZayaError
                    == .unsupported(file: config, key: "num_experts_per_tok", value: "2", supported: "1"))
            try Self.editJSON(config) { object in
                object["num_experts_per_tok"] = 1
                object["hidden_size"] = "wide"
            }
            #expect(Self.loadError(directory) as? ConfigFileError == .wrongType(path: config, key: "hidden_size", expected: "a number"))
        }
    }

    @Test func directoryWithoutWeightsSaysWhatIsThere() throws {
        try Self.withCopy(of: "zaya-mixed") { directory in
            try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
            #expect(Self.loadError(directory) as? ModelDirectoryError == .noWeights(directory, hasPyTorchWeights: false))
            FileManager.default.createFile(atPath: directory + "/pytorch_model.bin", contents: Data())
            #expect(Self.loadError(directory) as? ModelDirectoryError == .noWeights(directory, hasPyTorchWeights: true))
            try FileManager.default.removeItem(atPath: directory + "/config.json")
            #expect(Self.loadError(directory) as? ModelDirectoryError == .missingFile(directory + "/config.json"))
        }
        #expect(Self.loadError(ZayaFixture.path("zaya1-8b-config.json")) as? ModelDirectoryError
                == .notADirectory(ZayaFixture.path("zaya1-8b-config.json")))
    }

    @Test func badInputsAreRefused() throws {
        let model = try ZayaModel(path: ZayaFixture.path("zaya-mixed"))
        #expect(throws: EmbeddingError.tokenOutOfRange(token: 96, vocabSize: 96)) {
            try model.logits(tokens: [1, 96], batch: 1, length: 2)
        }
        // A padded position's id is never looked up.
        let padded = try model.logits(tokens: [5, -100], batch: 1, length: 2, mask: Tensor(shape: [1, 2], storage: [1, 0]))
        #expect(padded.storage[96...].allSatisfy { $0 == 0 })
        #expect(throws: DecodeError.chunksDoNotSum(chunks: [1, 2], length: 2)) {
            try model.logits(tokens: [1, 2], batch: 1, length: 2, chunkLengths: [1, 2])
        }
        #expect(throws: DecodeError.maskWithChunks) {
            try model.logits(tokens: [1, 2], batch: 1, length: 2, mask: Tensor(shape: [1, 2], storage: [1, 0]), chunkLengths: [1, 1])
        }
    }
}
