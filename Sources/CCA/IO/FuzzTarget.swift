/// The readers of untrusted bytes, as the fuzzer (`scripts/fuzz.sh`) and the regression test over its
/// corpus (`Tests/FuzzCorpus`) drive them. Each must end in a typed error or a value, never a crash, a
/// hang or a wrong answer; where a value comes out, writing it again must give the same value back.
enum FuzzTarget: String, CaseIterable, Sendable {
    /// A safetensors file, every tensor converted.
    case safetensors
    /// JSON text, parsed, printed and parsed again.
    case json
    /// A layer config file.
    case config
    /// A checkpoint: a 4-byte little-endian length, that many bytes of `checkpoint.json`, then the weights file.
    case checkpoint

    /// Feeds `bytes` to the reader; returns the error it refused them with, or nil when it accepted them.
    func run(_ bytes: [UInt8]) -> (any Error)? {
        do {
            switch self {
            case .safetensors:
                let file = try SafeTensors(bytes: bytes)
                for name in file.names { _ = try file[name]!.dtype.isFloat ? file.tensor(name) : file.integerTensor(name) }
            case .json:
                let text = try JSON.parse(bytes, source: "fuzz").prettyText()
                let again = try JSON.parse(Array(text.utf8), source: "fuzz printed").prettyText()
                precondition(again == text, "printing parsed JSON is not stable")
            case .config:
                let config = try LayerConfigFile.parse(jsonBytes: bytes, source: "fuzz")
                let again = try LayerConfigFile.parse(jsonBytes: config.fileJSON, source: "fuzz written")
                precondition(again.fileJSON == config.fileJSON, "a config written and read again differs")
            case .checkpoint:
                guard bytes.count >= 4 else { throw FuzzInputError.tooShort }
                let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
                guard length <= bytes.count - 4 else { throw FuzzInputError.tooShort }
                let checkpoint = try Checkpoint.decode(Array(bytes[4..<(4 + length)]), path: "fuzz checkpoint.json")
                let weights = Array(bytes[(4 + length)...])
                guard weights.count == checkpoint.weightsBytes else { throw FuzzInputError.sizeMismatch }
                _ = try Checkpoint.restore(checkpoint, from: SafeTensors(bytes: weights, path: "fuzz weights"))
            }
            return nil
        } catch {
            return error
        }
    }

    /// Valid inputs to start the fuzzer from, made by the writers of each format.
    static func seeds(_ target: FuzzTarget) throws -> [[UInt8]] {
        switch target {
        case .safetensors:
            let tensors = [("w", Tensor<Float>(randomNormal: [2, 3], seed: 1)), ("b", Tensor<Float>(randomNormal: [3], seed: 2))]
            return [try SafeTensors.serialize(tensors, metadata: ["format": "pt"]),
                    try SafeTensors.serialize(tensors, as: .BF16, int64: [("ids", [2], [7, -1])])]
        case .json:
            return [Array(#"{"a": [1, -2.5e3, true, null, "\u00e9\n"], "b": {"c": 18446744073709551615}}"#.utf8)]
        case .config:
            return AttentionKind.allCases.map { kind in (try? ComparisonShapes(hiddenSize: 64, headDim: 8).config(kind).fileJSON) ?? [] }
        case .checkpoint:
            let config = LanguageModelConfig(attention: .ccgqa, hiddenSize: 8, layers: 1, heads: 4, headDim: 4, intermediateSize: 4)
            let model = try LanguageModel<Float>(config: config, seed: 1)
            var optimizer = AdamW<Float>(weightDecay: 0.01)
            optimizer.step = 1
            for (name, parameter) in model.parameters {
                (optimizer.firstMoments[name], optimizer.secondMoments[name]) = (Tensor(zeros: parameter.shape), Tensor(zeros: parameter.shape))
            }
            let settings = TrainingSettings(preset: .tiny, matchParameters: false, contextLength: 15, batchSize: 2, seed: 3, weightDecay: 0.01,
                                            clipNorm: 1, evaluationInterval: 1, saveInterval: 1, validationBatches: 1)
            let checkpoint = Checkpoint(model: config, schedule: LearningRateSchedule(peak: 0.01, warmupSteps: 0, totalSteps: 2),
                                        settings: settings, step: 1,
                                        history: [LossRecord(step: 1, trainLoss: 5.5, validationLoss: 5.25, learningRate: 0.01)],
                                        weightsFile: "", weightsBytes: 0)
            let (_, json, weights) = try Checkpoint.encode(checkpoint, model: model, optimizer: optimizer)
            let length = json.count
            return [[UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)] + json + weights]
        }
    }
}

/// A fuzz input too short for the checkpoint target's framing.
enum FuzzInputError: Error { case tooShort, sizeMismatch }
