/// Turns text files into the token files training reads (`cca data prepare`): documents are split into a
/// training and a validation part by document, never inside one, so no validation text is trained on.
public enum CorpusPreparation {
    /// What was written.
    public struct Summary: Sendable, Equatable {
        public var trainDocuments: Int, validationDocuments: Int
        public var trainTokens: Int, validationTokens: Int
    }

    /// The documents of `paths`: each file is one document, or, with `separator`, its pieces between
    /// separators (empty pieces dropped).
    public static func documents(paths: [String], separator: String?) throws -> [[UInt8]] {
        let separatorBytes = separator.map { Array($0.utf8) }
        return try paths.flatMap { path -> [[UInt8]] in
            let bytes = try readFile(path)
            guard let separatorBytes, !separatorBytes.isEmpty else { return bytes.isEmpty ? [] : [bytes] }
            var pieces: [[UInt8]] = [], start = 0, index = 0
            while index + separatorBytes.count <= bytes.count {
                if bytes[index..<(index + separatorBytes.count)].elementsEqual(separatorBytes) {
                    if index > start { pieces.append(Array(bytes[start..<index])) }
                    index += separatorBytes.count
                    start = index
                } else {
                    index += 1
                }
            }
            if start < bytes.count { pieces.append(Array(bytes[start...])) }
            return pieces
        }
    }

    /// Tokenises `documents` and writes `directory/train.tokens` and `directory/validation.tokens`.
    ///
    /// Every `k`-th document (`k = round(1 / validationFraction)`, counting from the `k`-th) goes to
    /// validation, the rest to training; both parts get at least one document.
    /// - Throws: ``CorpusError`` when there are too few documents or a document has no tokens.
    public static func prepare(_ documents: [[UInt8]], vocabSize: Int, validationFraction: Double, directory: String,
                               tokenize: ([UInt8]) throws -> [Int]) throws -> Summary {
        guard validationFraction > 0, validationFraction < 1 else { throw CorpusError.badFraction(validationFraction) }
        guard documents.count >= 2 else { throw CorpusError.tooFewDocuments(documents.count) }
        let step = max(2, min(documents.count, Int((1 / validationFraction).rounded())))
        var train: [[Int]] = [], validation: [[Int]] = []
        for (index, document) in documents.enumerated() {
            let tokens = try tokenize(document)
            guard !tokens.isEmpty else { continue }
            if (index + 1) % step == 0 { validation.append(tokens) } else { train.append(tokens) }
        }
        guard !train.isEmpty, !validation.isEmpty else { throw CorpusError.tooFewDocuments(train.count + validation.count) }
        try createDirectory(directory)
        try TokenFile.write(train, vocabSize: vocabSize, to: directory + "/train.tokens")
        try TokenFile.write(validation, vocabSize: vocabSize, to: directory + "/validation.tokens")
        return Summary(trainDocuments: train.count, validationDocuments: validation.count,
                       trainTokens: train.reduce(0) { $0 + $1.count }, validationTokens: validation.reduce(0) { $0 + $1.count })
    }
}

/// A corpus that cannot be prepared.
public enum CorpusError: Error, CustomStringConvertible, Equatable {
    case tooFewDocuments(Int)
    case badFraction(Double)

    public var description: String {
        switch self {
        case let .tooFewDocuments(count):
            "\(count) non-empty documents: at least 2 are needed, one for training and one for validation (give more files or --split-on)"
        case let .badFraction(fraction): "the validation fraction must lie strictly between 0 and 1, got \(fraction)"
        }
    }
}
