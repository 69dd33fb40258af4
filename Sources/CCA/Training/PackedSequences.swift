/// Training windows drawn from a ``TokenFile``: each is `length + 1` consecutive tokens from a random
/// place, split at the document boundaries inside it, so that each piece is its own sequence (attending
/// only within itself, starting CCA's state afresh) and no target crosses from one document to the next.
///
/// Window `n` of a batch is a pure function of the seed, the batch index and `n`, so a resumed run draws
/// exactly the windows the uninterrupted run would have drawn.
public struct PackedSequences: Sendable {
    public let file: TokenFile
    public let length: Int

    /// - Throws: ``TrainingError/dataTooShort(path:bytes:needed:)`` when the file has fewer than `length + 1` tokens.
    public init(file: TokenFile, length: Int) throws {
        guard file.tokenCount > length + 1 else {
            throw TrainingError.dataTooShort(path: file.path, bytes: file.tokenCount, needed: length + 2)
        }
        (self.file, self.length) = (file, length)
    }

    /// `batch` windows: inputs and targets (``CrossEntropy/ignored`` where the next token starts another
    /// document), and the lengths of the pieces, window after window.
    public func batch(_ index: Int, size batch: Int, seed: UInt64) -> TrainingBatch {
        var random = SplitMix64(seed: seed ^ 0x5EED_0F_70_4E_5 ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
        var result = TrainingBatch(inputs: [], targets: [], lengths: [])
        for _ in 0..<batch {
            let start = Int(random.next() % UInt64(file.tokenCount - length))
            var document = file.document(containing: start)
            var pieceStart = 0
            for offset in 0..<length {
                result.inputs.append(file.token(start + offset))
                let next = start + offset + 1
                let crosses = document + 1 < file.documentCount && next == file.documentStart(document + 1)
                result.targets.append(crosses ? CrossEntropy.ignored : file.token(next))
                if crosses {
                    result.lengths.append(offset + 1 - pieceStart)
                    pieceStart = offset + 1
                    document += 1
                }
            }
            if pieceStart < length { result.lengths.append(length - pieceStart) }
        }
        return result
    }
}

/// One training batch: token ids and targets row after row, and the lengths of the sequences they form
/// (whole rows for fixed-length tasks, document pieces for packed corpora).
public struct TrainingBatch: Sendable, Equatable {
    public var inputs: [Int], targets: [Int]
    public var lengths: [Int]

    /// The layout of ``inputs``.
    public func layout() throws -> SequenceLayout { try SequenceLayout(lengths: lengths) }
}
