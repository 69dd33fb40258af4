/// A training checkpoint: `checkpoint.json` (model config, schedule, run settings, step, loss history, and
/// the name and size of the weights file) and `weights-<step>.safetensors` (parameters, the Adam moments as
/// `adam.m.<name>` / `adam.v.<name>`, and the step in its metadata).
///
/// Saving writes the new weights file under a new name first, then replaces the JSON atomically, then
/// deletes the old weights file: an interrupted save leaves the previous checkpoint intact. Loading believes
/// nothing it has not checked: the JSON's sizes and names, the weights file's size, names, shapes and step
/// must agree, and every value must be finite, or it fails saying which part is wrong.
public struct Checkpoint: Codable, Equatable, Sendable {
    public var model: LanguageModelConfig
    public var schedule: LearningRateSchedule
    public var settings: TrainingSettings
    /// Updates done; training resumes with update number `step`.
    public var step: Int
    /// One record per update done.
    public var history: [LossRecord]
    public var weightsFile: String
    public var weightsBytes: Int

    public static let fileName = "checkpoint.json"
    /// A bound on `checkpoint.json` checked before it is read (its loss history grows about 150 bytes a step).
    static let maxJSONBytes = 64 << 20

    /// The weights file of the checkpoint at `step`: `weights-00000300.safetensors`.
    static func weightsFileName(step: Int) -> String {
        let digits = String(step)
        return "weights-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".safetensors"
    }

    /// Whether `name` has the pattern of a weights file name (digits only between the fixed parts).
    static func isWeightsFileName(_ name: String) -> Bool {
        guard name.hasPrefix("weights-"), name.hasSuffix(".safetensors") else { return false }
        let digits = name.dropFirst("weights-".count).dropLast(".safetensors".count)
        return digits.count >= 8 && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Writes the checkpoint of `model` and `optimizer` into the locked run directory, then removes the
    /// previous weights file and any leftovers of interrupted saves.
    /// - Throws: ``TrainingError/notFinite(what:)`` when a parameter or moment is NaN or infinite.
    static func save(_ checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>, in run: RunDirectory) throws {
        let (record, json, weights) = try encode(checkpoint, model: model, optimizer: optimizer)
        do {
            try writeAtomically(weights, to: run.path + "/" + record.weightsFile)
            try writeAtomically(json, to: run.path + "/" + fileName)
        } catch { throw TrainingError.cannotWrite(path: run.path, reason: "\(error)") }
        run.removeLeftovers(keeping: record.weightsFile)
    }

    /// The two files of a checkpoint: `checkpoint.json` (with the weights file's name and size filled in)
    /// and the weights file's bytes.
    static func encode(_ checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>) throws
        -> (record: Checkpoint, json: [UInt8], weights: [UInt8]) {
        var tensors = model.parameters
        for (name, m) in optimizer.firstMoments { tensors["adam.m." + name] = m }
        for (name, v) in optimizer.secondMoments { tensors["adam.v." + name] = v }
        let notFinite = tensors.filter { !$0.value.storage.allSatisfy(\.isFinite) }.keys.sorted()
        guard notFinite.isEmpty else { throw TrainingError.notFinite(what: notFinite) }
        var record = checkpoint
        record.weightsFile = weightsFileName(step: checkpoint.step)
        let bytes = try SafeTensors.serialize(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                              metadata: ["step": "\(checkpoint.step)"])
        record.weightsBytes = bytes.count
        do { return (record, try JSON.encode(record), bytes) } catch { throw TrainingError.notFinite(what: ["\(error)"]) }
    }

    /// Reads and checks the checkpoint in `directory`.
    /// - Throws: ``TrainingError`` naming the file and what is wrong with it.
    public static func load(directory: String) throws -> (checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>) {
        let jsonPath = directory + "/" + fileName
        let json: [UInt8]
        do { json = try readFile(jsonPath, limit: maxJSONBytes) } catch let error as FileIOError {
            if RunDirectory.holdsRun(directory) { throw TrainingError.corruptCheckpoint(path: jsonPath, reason: error.reason) }
            throw TrainingError.missingCheckpoint(directory: directory)
        }
        let checkpoint = try decode(json, path: jsonPath)
        let weightsPath = directory + "/" + checkpoint.weightsFile
        let weights: SafeTensors
        do {
            let size = try OpenFile(weightsPath).size
            guard size == checkpoint.weightsBytes else {
                throw TrainingError.truncatedCheckpoint(path: weightsPath, reason: "it has \(size) bytes, but \(checkpoint.weightsBytes) were written")
            }
            weights = try SafeTensors(contentsOf: weightsPath)
        } catch let error as FileIOError {
            throw TrainingError.truncatedCheckpoint(path: weightsPath, reason: "the weights file cannot be read: \(error.reason)")
        } catch let error as SafeTensorsError {
            throw TrainingError.corruptCheckpoint(path: weightsPath, reason: error.message)
        }
        let (model, optimizer) = try restore(checkpoint, from: weights)
        return (checkpoint, model, optimizer)
    }

    /// Decodes `checkpoint.json` and checks that it is consistent in itself.
    static func decode(_ json: [UInt8], path: String) throws -> Checkpoint {
        let checkpoint: Checkpoint
        do { checkpoint = try JSON.decode(Checkpoint.self, from: json, source: path) } catch {
            throw TrainingError.corruptCheckpoint(path: path, reason: "\(error)")
        }
        do { try checkpoint.validate() } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.corruptCheckpoint(path: path, reason: "\(error)")
        }
        return checkpoint
    }

    private func validate() throws {
        func refuse(_ reason: String) -> Error { TrainingError.corruptCheckpoint(path: Self.fileName, reason: reason) }
        try model.validate()
        try settings.validate()
        try schedule.validate()
        guard (0...schedule.totalSteps).contains(step) else {
            throw refuse("step \(step) lies outside the schedule of \(schedule.totalSteps) steps")
        }
        guard history.count == step, history.enumerated().allSatisfy({ $0.element.step == $0.offset + 1 }) else {
            throw refuse("the loss history must hold one record for each of the \(step) steps, numbered from 1")
        }
        if let bad = history.first(where: { !$0.trainLoss.isFinite || !$0.learningRate.isFinite || !($0.validationLoss?.isFinite ?? true) }) {
            throw refuse("the loss history of step \(bad.step) holds a value that is not finite")
        }
        guard weightsFile == Self.weightsFileName(step: step) else {
            throw refuse("weightsFile must be '\(Self.weightsFileName(step: step))' (a plain name in the run directory, for step \(step)), not '\(weightsFile)'")
        }
        guard weightsBytes > 0 else { throw refuse("weightsBytes must be positive, not \(weightsBytes)") }
    }

    /// The model and optimizer in `weights`, after checking them against the checkpoint: the step in the
    /// metadata, exactly the model's parameters with their shapes, both Adam moments of each (after step 0)
    /// with the same shapes, and finite values (second moments non-negative).
    static func restore(_ checkpoint: Checkpoint, from weights: SafeTensors) throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>) {
        func refuse(_ reason: String) -> Error { TrainingError.corruptCheckpoint(path: weights.path, reason: reason) }
        guard weights.metadata["step"] == "\(checkpoint.step)" else {
            throw refuse("its metadata says step \(weights.metadata["step"] ?? "(none)") but checkpoint.json says \(checkpoint.step); the two files are from different saves")
        }
        let shapes = checkpoint.model.parameterShapes
        var expected = shapes
        if checkpoint.step > 0 {
            for (name, shape) in shapes { (expected["adam.m." + name], expected["adam.v." + name]) = (shape, shape) }
        }
        let missing = expected.keys.filter { weights[$0] == nil }.sorted()
        guard missing.isEmpty else {
            throw refuse("it lacks \(missing.count) tensor\(missing.count == 1 ? "" : "s") that checkpoint.json's model and step \(checkpoint.step) need: "
                         + Self.list(missing) + (missing.allSatisfy { $0.hasPrefix("adam.") } ? " (Adam moments)" : ""))
        }
        let extra = weights.names.filter { expected[$0] == nil }.sorted()
        guard extra.isEmpty else { throw refuse("it holds tensors that checkpoint.json's model does not have: " + Self.list(extra)) }
        var tensors: [String: Tensor<Float>] = [:]
        for name in weights.names.sorted() {
            let entry = weights[name]!
            guard entry.dtype == .F32 else { throw refuse("'\(name)' is \(entry.dtype); checkpoints hold F32") }
            guard entry.shape == expected[name] else {
                throw refuse("'\(name)' has shape \(entry.shape) but checkpoint.json's model needs \(expected[name]!)")
            }
            let tensor = try weights.tensor(name)
            let bad = tensor.storage.filter { !$0.isFinite || (name.hasPrefix("adam.v.") && $0 < 0) }.count
            guard bad == 0 else {
                throw refuse("'\(name)' has \(bad) of \(tensor.count) values that are not finite" + (name.hasPrefix("adam.v.") ? " and non-negative" : ""))
            }
            tensors[name] = tensor
        }
        var optimizer = AdamW<Float>(weightDecay: Float(checkpoint.settings.weightDecay))
        optimizer.step = checkpoint.step
        var parameters: [String: Tensor<Float>] = [:]
        for (name, tensor) in tensors {
            if name.hasPrefix("adam.m.") { optimizer.firstMoments[String(name.dropFirst(7))] = tensor }
            else if name.hasPrefix("adam.v.") { optimizer.secondMoments[String(name.dropFirst(7))] = tensor }
            else { parameters[name] = tensor }
        }
        do {
            return (try LanguageModel<Float>(config: checkpoint.model, parameters: parameters), optimizer)
        } catch { throw refuse("\(error)") }
    }

    private static func list(_ names: [String]) -> String {
        names.prefix(8).joined(separator: ", ") + (names.count > 8 ? " and \(names.count - 8) more" : "")
    }
}

/// How a run trains, beyond the model and the schedule: stored in the checkpoint so `--resume` needs no flags.
public struct TrainingSettings: Codable, Equatable, Sendable {
    /// The preset the model and defaults came from.
    public var preset: LanguageModelConfig.Preset
    /// Whether the MLP was resized to the MHA model's parameter count.
    public var matchParameters: Bool
    /// The UTF-8 text file learnt as bytes, as given; nil for the built-in recall task.
    public var dataPath: String?
    /// Size and FNV-1a checksum of the data file, so a resume on changed data is refused.
    public var dataBytes: Int?, dataChecksum: UInt64?
    /// FNV-1a checksum of the `tokenizer.json` the run keeps beside its weights; nil when its tokens are bytes.
    public var tokenizerChecksum: UInt64?
    /// Tokens per training example.
    public var contextLength: Int
    public var batchSize: Int
    public var seed: UInt64
    public var weightDecay: Double
    public var clipNorm: Double
    /// Updates between validation losses, and between checkpoints.
    public var evaluationInterval: Int, saveInterval: Int
    public var validationBatches: Int

    /// Throws ``TrainingError/invalidOption(name:value:expected:)`` for the first setting out of range.
    func validate() throws {
        try TrainingError.require("batch size", batchSize, in: 1...TrainingOptions.maxBatchSize)
        try TrainingError.require("context length", contextLength, in: 1...TrainingOptions.maxContextLength)
        try TrainingError.require("save interval", saveInterval, in: 1...TrainingOptions.maxSteps)
        try TrainingError.require("evaluation interval", evaluationInterval, in: 1...TrainingOptions.maxSteps)
        try TrainingError.require("validation batches", validationBatches, in: 1...1000)
        guard weightDecay.isFinite, weightDecay >= 0, clipNorm.isFinite, clipNorm > 0 else {
            throw TrainingError.invalidOption(name: "weight decay / clip norm", value: "\(weightDecay) / \(clipNorm)", expected: "finite, >= 0 / > 0")
        }
    }
}

/// One logged step: training loss, and validation loss when it was measured.
public struct LossRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var trainLoss: Double
    public var validationLoss: Double?
    public var learningRate: Double
}

extension Checkpoint {
    /// The tokenizer the run in `directory` was trained with; nil when its tokens are bytes.
    /// - Throws: ``TrainingError/corruptCheckpoint(path:reason:)`` when the run records one that is missing,
    ///   changed since, or of another vocabulary size than the model.
    public static func tokenizer(directory: String) throws -> BPETokenizer? {
        let path = directory + "/" + fileName
        let checkpoint: Checkpoint
        do { checkpoint = try decode(try readFile(path, limit: maxJSONBytes), path: path) } catch let error as FileIOError {
            throw RunDirectory.holdsRun(directory) ? TrainingError.corruptCheckpoint(path: path, reason: error.reason)
                : TrainingError.missingCheckpoint(directory: directory)
        }
        return try recordedTokenizer(directory: directory, checkpoint: checkpoint)?.tokenizer
    }

    /// The tokenizer file of the run, checked against the checkpoint's checksum and vocabulary.
    static func recordedTokenizer(directory: String, checkpoint: Checkpoint) throws -> RecordedTokenizer? {
        guard let checksum = checkpoint.settings.tokenizerChecksum else { return nil }
        let path = directory + "/" + RecordedTokenizer.fileName
        func refuse(_ reason: String) -> Error { TrainingError.corruptCheckpoint(path: path, reason: reason) }
        let recorded: RecordedTokenizer?
        do { recorded = try RecordedTokenizer.load(in: directory) } catch { throw refuse("\(error)") }
        guard let recorded else { throw refuse("the run was trained with a tokenizer, but its tokenizer.json is missing") }
        guard recorded.checksum == checksum else { throw refuse("it is not the tokenizer the run was trained with (its checksum differs)") }
        guard recorded.tokenizer.vocabSize == checkpoint.model.vocabSize else {
            throw refuse("its vocabulary of \(recorded.tokenizer.vocabSize) is not the model's \(checkpoint.model.vocabSize)")
        }
        return recorded
    }
}

extension LanguageModel where Scalar == Float {
    /// The model saved in a `cca train` checkpoint directory.
    public init(checkpointDirectory: String) throws {
        self = try Checkpoint.load(directory: checkpointDirectory).model
    }
}
