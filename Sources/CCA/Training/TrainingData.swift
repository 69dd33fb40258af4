/// Where training batches come from: the built-in recall task, a UTF-8 text file read as bytes, or a
/// tokenised corpus prepared by `cca data prepare` (packed windows that keep the document boundaries).
///
/// Batch `n` of a split is a pure function of the seed and `n`, so a resumed run sees exactly the
/// batches the uninterrupted run would have seen, without saving any generator state.
public enum TrainingData: Sendable {
    case recall(AssociativeRecall)
    /// The tokens of a text (its bytes, or a tokenizer's ids), split into training (first 90 %) and
    /// validation (last 10 %) parts.
    case text(train: [Int], validation: [Int], length: Int, vocabSize: Int)
    /// A prepared corpus: training and validation documents in their own token files.
    case tokens(train: PackedSequences, validation: PackedSequences)

    public enum Split: UInt64, Sendable { case train = 1, validation = 2 }

    /// The data at `path`: a directory made by `cca data prepare` (its `train.tokens` and
    /// `validation.tokens`), or a text file read as bytes or encoded by `tokenizer`.
    public static func open(_ path: String, length: Int, tokenizer: (any Tokenizer)? = nil) throws -> TrainingData {
        guard isDirectory(path) else { return try textFile(path, length: length, tokenizer: tokenizer) }
        return .tokens(train: try PackedSequences(file: TokenFile(path: path + "/train.tokens"), length: length),
                       validation: try PackedSequences(file: TokenFile(path: path + "/validation.tokens"), length: length))
    }

    /// The vocabulary the tokens come from: 256 bytes, or the token files' own.
    public var vocabSize: Int {
        switch self {
        case .recall: 256
        case let .text(_, _, _, vocabSize): vocabSize
        case let .tokens(train, _): train.file.vocabSize
        }
    }

    /// Reads `path` for examples of `length` tokens: as bytes (token = byte, vocabulary 256), or as the ids
    /// `tokenizer` gives its text (which must then be UTF-8).
    /// - Throws: ``TrainingError/dataTooShort(path:bytes:needed:)`` below ``minimumBytes(length:)`` tokens.
    public static func textFile(_ path: String, length: Int, tokenizer: (any Tokenizer)? = nil) throws -> TrainingData {
        try TrainingError.require("context length", length, in: 1...TrainingOptions.maxContextLength)
        let tokens: [Int]
        do {
            let bytes = try readFile(path, limit: TrainingOptions.maxDataBytes)
            tokens = try tokenizer.map { try $0.encode(utf8: bytes, addSpecialTokens: true) } ?? bytes.map(Int.init)
        } catch {
            throw TrainingError.unreadableData(path: path, reason: "\(error)")
        }
        let needed = minimumBytes(length: length)
        guard tokens.count >= needed else { throw TrainingError.dataTooShort(path: path, bytes: tokens.count, needed: needed) }
        let cut = tokens.count * 9 / 10
        return .text(train: Array(tokens[..<cut]), validation: Array(tokens[cut...]), length: length,
                     vocabSize: tokenizer?.vocabSize ?? 256)
    }

    /// The smallest text that gives both splits (the first 90 % and the rest) at least `length + 2` tokens:
    /// each example needs `length + 1` consecutive tokens, and its start is drawn from at least two places.
    public static func minimumBytes(length: Int) -> Int {
        // The validation part of n bytes has n - floor(9n/10) = ceil(n/10) tokens, the training part more.
        10 * (length + 1) + 1
    }

    /// Bytes of the text file; nil for the recall task.
    public var byteCount: Int? {
        switch self {
        case .recall: nil
        case let .text(train, validation, _, _): train.count + validation.count
        case let .tokens(train, validation): train.file.tokenCount + validation.file.tokenCount
        }
    }

    /// FNV-1a hash of the text's bytes, to recognise the same file on resume; nil for the recall task.
    public var checksum: UInt64? {
        var hash = FNV1a()
        switch self {
        case .recall: return nil
        case let .text(train, validation, _, _):
            for token in train + validation { hash.add(UInt64(token)) }
        case let .tokens(train, validation):
            for file in [train.file, validation.file] {
                for index in 0..<file.tokenCount { hash.add(UInt64(file.token(index))) }
            }
        }
        return hash.value
    }

    /// Tokens per example.
    public var length: Int {
        switch self {
        case .recall(let task): task.length
        case .text(_, _, let length, _): length
        case .tokens(let train, _): train.length
        }
    }

    /// The opening `count` tokens (fewer when its document piece is shorter) of the first validation
    /// example, as a prompt that shows what a model trained on this data writes; nil for the recall task,
    /// whose examples are not text.
    public func samplePrompt(count: Int, seed: UInt64) -> [Int]? {
        if case .recall = self { return nil }
        let example = batch(0, of: .validation, size: 1, seed: seed)
        return Array(example.inputs.prefix(min(count, example.lengths[0])))
    }

    /// Batch number `index` of `split`: `batch` examples of ``length`` inputs and targets, row after row.
    public func batch(_ index: Int, of split: Split, size batch: Int, seed: UInt64) -> TrainingBatch {
        let example: (inout SplitMix64) -> (inputs: [Int], targets: [Int])
        switch self {
        case let .tokens(train, validation):
            return (split == .train ? train : validation).batch(index, size: batch, seed: seed ^ (split.rawValue << 56))
        case .recall(let task):
            example = { task.example(&$0) }
        case let .text(train, validation, length, _):
            let tokens = split == .train ? train : validation
            example = { random in
                let start = Int(random.next() % UInt64(tokens.count - length))
                return (Array(tokens[start..<(start + length)]), Array(tokens[(start + 1)...(start + length)]))
            }
        }
        var random = SplitMix64(seed: seed ^ (split.rawValue << 56) ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
        var result = TrainingBatch(inputs: [], targets: [], lengths: [Int](repeating: length, count: batch))
        for _ in 0..<batch {
            let (inputs, targets) = example(&random)
            result.inputs += inputs
            result.targets += targets
        }
        return result
    }
}
