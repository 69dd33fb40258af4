/// Why training or a checkpoint cannot go on.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case unreadableData(path: String, reason: String)
    case dataTooShort(path: String, bytes: Int, needed: Int)
    case missingCheckpoint(directory: String)
    case truncatedCheckpoint(path: String, reason: String)
    case corruptCheckpoint(path: String, reason: String)
    case configMismatch(checkpoint: String, requested: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableData(path, reason): "cannot read the training data file '\(path)': \(reason)"
        case let .dataTooShort(path, bytes, needed):
            "'\(path)' has \(bytes) bytes; at least \(needed) are needed for a training and a validation split"
        case let .missingCheckpoint(directory): "no checkpoint in '\(directory)' (expected checkpoint.json)"
        case let .truncatedCheckpoint(path, reason): "checkpoint file '\(path)' is truncated: \(reason)"
        case let .corruptCheckpoint(path, reason): "checkpoint file '\(path)' is unusable: \(reason)"
        case let .configMismatch(checkpoint, requested):
            "the checkpoint was trained with \(checkpoint) but this run asks for \(requested); resume with the same settings"
        case let .cannotWrite(path, reason): "cannot write '\(path)': \(reason)"
        }
    }
}
