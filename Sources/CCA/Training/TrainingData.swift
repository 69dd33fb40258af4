/// Where training batches come from: the built-in recall task or a UTF-8 text file read as bytes.
///
/// Batch `n` of a split is a pure function of the seed and `n`, so a resumed run sees exactly the
/// batches the uninterrupted run would have seen, without saving any generator state.
public enum TrainingData: Sendable {
    case recall(AssociativeRecall)
    /// Byte tokens of a text, split into training (first 90 %) and validation (last 10 %) parts.
    case text(train: [Int], validation: [Int], length: Int)

    public enum Split: UInt64, Sendable { case train = 1, validation = 2 }

    /// Reads `path` as bytes (the byte-level tokenizer: token = byte, vocabulary 256) for examples of
    /// `length` tokens.
    /// - Throws: ``TrainingError/dataTooShort(path:bytes:needed:)`` below ``minimumBytes(length:)`` bytes.
    public static func textFile(_ path: String, length: Int) throws -> TrainingData {
        try TrainingError.require("context length", length, in: 1...TrainingOptions.maxContextLength)
        let tokens: [Int]
        do { tokens = try readFile(path, limit: TrainingOptions.maxDataBytes).map(Int.init) } catch {
            throw TrainingError.unreadableData(path: path, reason: "\(error)")
        }
        let needed = minimumBytes(length: length)
        guard tokens.count >= needed else { throw TrainingError.dataTooShort(path: path, bytes: tokens.count, needed: needed) }
        let cut = tokens.count * 9 / 10
        return .text(train: Array(tokens[..<cut]), validation: Array(tokens[cut...]), length: length)
    }

    /// The smallest text that gives both splits (the first 90 % and the rest) at least `length + 2` tokens:
    /// each example needs `length + 1` consecutive tokens, and its start is drawn from at least two places.
    public static func minimumBytes(length: Int) -> Int {
        // The validation part of n bytes has n - floor(9n/10) = ceil(n/10) tokens, the training part more.
        10 * (length + 1) + 1
    }

    /// Bytes of the text file; nil for the recall task.
    public var byteCount: Int? {
        guard case let .text(train, validation, _) = self else { return nil }
        return train.count + validation.count
    }

    /// FNV-1a hash of the text's bytes, to recognise the same file on resume; nil for the recall task.
    public var checksum: UInt64? {
        guard case let .text(train, validation, _) = self else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for token in train + validation { hash = (hash ^ UInt64(token)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Tokens per example.
    public var length: Int {
        switch self {
        case .recall(let task): task.length
        case .text(_, _, let length): length
        }
    }

    /// Batch number `index` of `split`: `batch` examples of ``length`` inputs and targets, row after row.
    public func batch(_ index: Int, of split: Split, size batch: Int, seed: UInt64) -> (inputs: [Int], targets: [Int]) {
        var random = SplitMix64(seed: seed ^ (split.rawValue << 56) ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
        var inputs: [Int] = [], targets: [Int] = []
        for _ in 0..<batch {
            switch self {
            case .recall(let task):
                let example = task.example(&random)
                inputs += example.inputs
                targets += example.targets
            case let .text(train, validation, length):
                let tokens = split == .train ? train : validation
                let start = Int(random.next() % UInt64(tokens.count - length))
                inputs += tokens[start..<(start + length)]
                targets += tokens[(start + 1)...(start + length)]
            }
        }
        return (inputs, targets)
    }
}
