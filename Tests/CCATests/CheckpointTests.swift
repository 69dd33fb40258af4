@testable import CCA
import Foundation
import Testing

/// Checkpoint loading believes nothing it has not checked: every edit of the JSON or the weights file that
/// would mislead training is refused with the reason, and names read from the JSON stay inside the run.
@Suite struct CheckpointTests {
    static func directory() -> String {
        let path = NSTemporaryDirectory() + "cca-checkpoint-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A saved one-step checkpoint of a small model: (directory, JSON object, weights file name).
    static func saved() throws -> (directory: String, json: [String: Any], weights: String) {
        let directory = directory()
        let seed = try FuzzTarget.seeds(.checkpoint)[0]
        let length = Int(seed[0]) | Int(seed[1]) << 8 | Int(seed[2]) << 16 | Int(seed[3]) << 24
        let json = Array(seed[4..<(4 + length)]), weights = Array(seed[(4 + length)...])
        try Data(json).write(to: URL(fileURLWithPath: directory + "/checkpoint.json"))
        try Data(weights).write(to: URL(fileURLWithPath: directory + "/weights-00000001.safetensors"))
        let object = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
        return (directory, object, directory + "/weights-00000001.safetensors")
    }

    static func write(_ object: [String: Any], to directory: String) throws {
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: directory + "/checkpoint.json"))
    }

    /// The reason `Checkpoint.load` gives, or nil when it loads.
    static func refusal(_ directory: String) -> String? {
        do { _ = try Checkpoint.load(directory: directory); return nil } catch { return "\(error)" }
    }

    @Test func aSavedCheckpointLoadsWithItsValues() throws {
        let (directory, json, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loaded = try Checkpoint.load(directory: directory)
        #expect(loaded.checkpoint.step == 1 && loaded.optimizer.step == 1)
        #expect(loaded.checkpoint.model.layers == (json["model"] as! [String: Any])["layers"] as! Int)
        let reference = try LanguageModel<Float>(config: loaded.checkpoint.model, seed: 1)
        #expect(loaded.model.parameters == reference.parameters)
        #expect(Set(loaded.optimizer.firstMoments.keys) == Set(reference.parameters.keys))
    }

    @Test func editedJSONIsRefused() throws {
        func edited(_ change: (inout [String: Any]) -> Void) throws -> String? {
            let (directory, json, _) = try Self.saved()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var object = json
            change(&object)
            try Self.write(object, to: directory)
            return Self.refusal(directory)
        }
        func model(_ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
            { object in var model = object["model"] as! [String: Any]; model[key] = value; object["model"] = model }
        }
        #expect(try edited { $0["step"] = 2 }?.contains("one record for each of the 2 steps") == true)
        #expect(try edited { object in
            object["step"] = 2
            object["history"] = (object["history"] as! [[String: Any]]) + [["step": 2, "trainLoss": 1.0, "learningRate": 0.01]]
        }?.contains("weightsFile must be 'weights-00000002.safetensors'") == true)
        #expect(try edited(model("layers", 2))?.contains("lacks") == true)
        #expect(try edited(model("normEpsilon", -1))?.contains("norm_epsilon = -1.0 is invalid") == true)
        #expect(try edited(model("hiddenSize", 4))?.contains("shape") == true)
        #expect(try edited { $0["weightsFile"] = "../victim/x.safetensors" }?.contains("a plain name in the run directory") == true)
        #expect(try edited { $0["weightsBytes"] = 12 }?.contains("truncated") == true)
        #expect(try edited { $0["extra"] = 1 }?.contains("unknown key 'extra'") == true)
        #expect(try edited { $0["history"] = [] }?.contains("one record for each of the 1 steps") == true)
    }

    /// Rewrites the weights file with `tensors` changed, keeping the JSON's size field in step.
    static func editWeights(_ change: (inout [String: Tensor<Float>]) -> Void, metadata: [String: String] = ["step": "1"]) throws -> String? {
        let (directory, json, weights) = try Self.saved()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var tensors = try SafeTensors(contentsOf: weights).floatTensors()
        change(&tensors)
        try SafeTensors.write(tensors, metadata: metadata, to: weights)
        var object = json
        object["weightsBytes"] = try FileManager.default.attributesOfItem(atPath: weights)[.size] as! Int
        try Self.write(object, to: directory)
        return Self.refusal(directory)
    }

    @Test func mismatchedWeightsAreRefused() throws {
        #expect(try Self.editWeights { _ in } == nil)
        // The moment of the wrong shape that made AdamW write past the end of the parameter.
        #expect(try Self.editWeights { $0["adam.m.norm.weight"] = Tensor<Float>(zeros: [3]) }?
            .contains("'adam.m.norm.weight' has shape [3] but checkpoint.json's model needs [8]") == true)
        #expect(try Self.editWeights { $0["adam.v.norm.weight"] = nil }?.contains("adam.v.norm.weight (Adam moments)") == true)
        #expect(try Self.editWeights { $0["adam.v.norm.weight"] = Tensor<Float>(zeros: [8], value: -1) }?.contains("not finite and non-negative") == true)
        #expect(try Self.editWeights { $0["norm.weight"] = Tensor<Float>(zeros: [8], value: .nan) }?
            .contains("'norm.weight' has 8 of 8 values that are not finite") == true)
        #expect(try Self.editWeights { $0["layers.1.norm.weight"] = Tensor<Float>(zeros: [8]) }?.contains("does not have: layers.1.norm.weight") == true)
        #expect(try Self.editWeights({ _ in }, metadata: ["step": "7"])?.contains("metadata says step 7 but checkpoint.json says 1") == true)
    }

    @Test func oversizedCheckpointJSONIsNotRead() throws {
        let (directory, _, _) = try Self.saved()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/checkpoint.json"))
        try handle.truncate(atOffset: 8 << 30)  // sparse: costs no disk, would cost 8 GB of memory if read
        try handle.close()
        #expect(Self.refusal(directory)?.contains("more than the \(Checkpoint.maxJSONBytes) allowed") == true)
    }

    @Test func savingNonFiniteValuesNamesThem() throws {
        let config = LanguageModelConfig(attention: .mha, hiddenSize: 8, layers: 1, heads: 2, headDim: 4, intermediateSize: 4)
        var model = try LanguageModel<Float>(config: config, seed: 1)
        try model.updateParameters { $0["norm.weight"]!.storage[2] = .infinity }
        let checkpoint = Checkpoint(model: config, schedule: LearningRateSchedule(peak: 0.01, warmupSteps: 0, totalSteps: 1),
                                    settings: Self.settings,
                                    step: 0, history: [], weightsFile: "", weightsBytes: 0)
        #expect(throws: TrainingError.notFinite(what: ["norm.weight"])) {
            try Checkpoint.encode(checkpoint, model: model, optimizer: AdamW<Float>(weightDecay: 0))
        }
        var record = checkpoint
        record.history = [LossRecord(step: 1, trainLoss: .nan, validationLoss: nil, learningRate: 0.01)]
        try model.updateParameters { $0["norm.weight"]!.storage[2] = 1 }
        #expect(throws: TrainingError.notFinite(what: ["'history[0].trainLoss' is nan, which JSON cannot hold; only finite numbers can be written"])) {
            try Checkpoint.encode(record, model: model, optimizer: AdamW<Float>(weightDecay: 0))
        }
    }

    static let settings = TrainingSettings(preset: .tiny, matchParameters: false, contextLength: 15, batchSize: 2, seed: 0, weightDecay: 0,
                                           clipNorm: 1, evaluationInterval: 1, saveInterval: 1, validationBatches: 1)
}
