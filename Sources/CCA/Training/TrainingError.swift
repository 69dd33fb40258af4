/// Why training or a checkpoint cannot go on.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidOption(name: String, value: String, expected: String)
    case unreadableData(path: String, reason: String)
    case dataTooShort(path: String, bytes: Int, needed: Int)
    case dataChanged(path: String, reason: String)
    case unreadableTokenizer(path: String, reason: String)
    /// `--tokenizer` names another file than the one the data directory or the run records.
    case tokenizerMismatch(given: String, recorded: String)
    /// The tokenizer's vocabulary is not the one the token files were written with.
    case tokenizerVocabulary(path: String, tokenizer: Int, data: Int)
    case missingCheckpoint(directory: String)
    case truncatedCheckpoint(path: String, reason: String)
    case corruptCheckpoint(path: String, reason: String)
    case configMismatch(checkpoint: String, requested: String)
    case runExists(directory: String, step: Int?)
    case runFinished(directory: String, steps: Int)
    case cannotExtend(directory: String, step: Int, requested: Int)
    case runInUse(directory: String, lockFile: String, holder: Int?)
    case cannotWrite(path: String, reason: String)
    /// The loss became NaN or infinite: the run diverged.
    case diverged(step: Int, loss: Double)
    /// Values that cannot be saved, named.
    case notFinite(what: [String])

    public var description: String {
        switch self {
        case let .invalidOption(name, value, expected): "\(name) = \(value) is invalid: expected \(expected)"
        case let .unreadableData(path, reason): "cannot read the training data file '\(path)': \(reason)"
        case let .dataTooShort(path, bytes, needed):
            "'\(path)' has \(bytes) bytes; at least \(needed) are needed for a training and a validation split"
        case let .dataChanged(path, reason):
            "the training data file '\(path)' is not the one the run started with (\(reason)); a resumed run must see the same data"
        case let .unreadableTokenizer(path, reason): "cannot use the tokenizer '\(path)': \(reason)"
        case let .tokenizerMismatch(given, recorded):
            "the tokenizer '\(given)' is not the one recorded in '\(recorded)' (its bytes differ); leave --tokenizer out to use the recorded one, "
                + "or prepare the data again with this tokenizer"
        case let .tokenizerVocabulary(path, tokenizer, data):
            "the tokenizer has \(tokenizer) tokens but the tokens of '\(path)' come from a vocabulary of \(data); "
                + "prepare the data with this tokenizer (`cca data prepare --tokenizer`)"
        case let .missingCheckpoint(directory): "no checkpoint in '\(directory)' (expected \(Checkpoint.fileName))"
        case let .truncatedCheckpoint(path, reason): "checkpoint file '\(path)' is truncated: \(reason)"
        case let .corruptCheckpoint(path, reason): "checkpoint file '\(path)' is unusable: \(reason)"
        case let .configMismatch(checkpoint, requested):
            "the run was trained with \(checkpoint), but this command asks for \(requested); leave those options out to resume with the run's own settings (only --steps and --save-every may change)"
        case let .runExists(directory, step):
            "'\(directory)' already holds a run" + (step.map { " (at step \($0))" } ?? "")
                + "; use --resume \(directory) to continue it, --overwrite to replace it, or another --out"
        case let .runFinished(directory, steps):
            "the run in '\(directory)' has done all \(steps) steps of its schedule; pass --steps with more than \(steps) to extend it"
        case let .cannotExtend(directory, step, requested):
            "the run in '\(directory)' is at step \(step); --steps \(requested) must be larger to extend it"
        case let .runInUse(directory, lockFile, holder):
            "'\(directory)' is in use by another training run" + (holder.map { " (process \($0))" } ?? "")
                + " holding the lock file '\(lockFile)'; wait for it to finish or pick another --out"
        case let .cannotWrite(path, reason): "cannot write '\(path)': \(reason)"
        case let .diverged(step, loss):
            "the training loss became \(loss) at step \(step): the run diverged; lower --learning-rate or lengthen --warmup"
        case let .notFinite(what):
            "cannot save a checkpoint: values are not finite in " + what.prefix(8).joined(separator: ", ")
                + (what.count > 8 ? " and \(what.count - 8) more" : "") + "; the run diverged, lower --learning-rate"
        }
    }

    /// Throws ``invalidOption(name:value:expected:)`` unless `value` lies in `range`.
    static func require(_ name: String, _ value: Int, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw TrainingError.invalidOption(name: name, value: "\(value)", expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
    }
}
