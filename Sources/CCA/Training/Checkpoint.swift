/// A training checkpoint: `checkpoint.json` (model config, schedule, step, optimizer step, loss history,
/// and the name and size of the weights file) and `weights-<step>.safetensors` (parameters, and the Adam
/// moments as `adam.m.<name>` / `adam.v.<name>`).
///
/// Saving writes the new weights file under a new name first, then replaces the JSON atomically, then
/// deletes the old weights file: an interrupted save leaves the previous checkpoint intact.
public struct Checkpoint: Codable, Equatable, Sendable {
    public var model: LanguageModelConfig
    public var schedule: LearningRateSchedule
    public var batchSize: Int
    public var seed: UInt64
    /// Updates done; training resumes with update number `step`.
    public var step: Int
    public var history: [LossRecord]
    public var weightsFile: String
    public var weightsBytes: Int

    static let fileName = "checkpoint.json"

    /// Writes the checkpoint of `model` and `optimizer` into `directory`.
    static func save(_ checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>, directory: String) throws {
        try createDirectory(directory)
        var tensors = model.parameters.tensors()
        for (name, m) in optimizer.firstMoments { tensors["adam.m." + name] = m.tensor }
        for (name, v) in optimizer.secondMoments { tensors["adam.v." + name] = v.tensor }
        let bytes = try SafeTensors.serialize(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        var record = checkpoint
        let step = String(checkpoint.step)
        record.weightsFile = "weights-" + String(repeating: "0", count: max(0, 8 - step.count)) + step + ".safetensors"
        record.weightsBytes = bytes.count
        let previous = try? load(directory: directory).checkpoint.weightsFile
        try writeAtomically(bytes, to: directory + "/" + record.weightsFile)
        try writeAtomically(try JSON.encode(record), to: directory + "/" + fileName)
        if let previous, previous != record.weightsFile { try? removeFile(directory + "/" + previous) }
    }

    /// Reads a checkpoint; throws ``TrainingError`` when a file is missing, truncated or inconsistent.
    static func load(directory: String) throws -> (checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>) {
        let jsonPath = directory + "/" + fileName
        guard let json = try? readFile(jsonPath) else { throw TrainingError.missingCheckpoint(directory: directory) }
        let checkpoint: Checkpoint
        do { checkpoint = try JSON.decode(Checkpoint.self, from: json, source: jsonPath) } catch {
            throw TrainingError.corruptCheckpoint(path: jsonPath, reason: "\(error)")
        }
        let weightsPath = directory + "/" + checkpoint.weightsFile
        guard let data = try? readFile(weightsPath) else {
            throw TrainingError.truncatedCheckpoint(path: weightsPath, reason: "the weights file is missing")
        }
        guard data.count == checkpoint.weightsBytes else {
            throw TrainingError.truncatedCheckpoint(path: weightsPath, reason: "\(data.count) bytes, \(checkpoint.weightsBytes) written")
        }
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors(bytes: data, path: weightsPath).floatTensors() } catch {
            throw TrainingError.corruptCheckpoint(path: weightsPath, reason: "\(error)")
        }
        var parameters: [String: Tensor] = [:]
        var optimizer = AdamW<Float>(weightDecay: 0)
        optimizer.step = checkpoint.step
        for (name, tensor) in tensors {
            if name.hasPrefix("adam.m.") { optimizer.firstMoments[String(name.dropFirst(7))] = TrainingTensor(tensor) }
            else if name.hasPrefix("adam.v.") { optimizer.secondMoments[String(name.dropFirst(7))] = TrainingTensor(tensor) }
            else { parameters[name] = tensor }
        }
        do {
            let model = try LanguageModel<Float>(config: checkpoint.model, parameters: parameters.training())
            return (checkpoint, model, optimizer)
        } catch {
            throw TrainingError.corruptCheckpoint(path: weightsPath, reason: "\(error)")
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
