/// A tokenised corpus on disk: every document's token ids back to back, and where each document starts, so
/// that training can pack sequences and keep the document boundaries. Read through a memory map, so a
/// corpus of billions of tokens opens at once.
///
/// Layout (little-endian): the 16-byte magic `swift-cca tokens`, then `UInt64` fields — format version (1),
/// vocabulary size, token count, document count — then the tokens as `UInt32`, then `documentCount + 1`
/// `UInt64` document offsets (the first 0, the last the token count).
public final class TokenFile: @unchecked Sendable {
    static let magic = Array("swift-cca tokens".utf8)
    static let headerBytes = 16 + 4 * 8

    public let path: String
    public let vocabSize: Int
    public let tokenCount: Int
    public let documentCount: Int
    private let file: MappedFile
    private let tokens: UnsafePointer<UInt32>
    private let offsets: UnsafePointer<UInt64>

    /// Opens and checks the file: magic, version, sizes against the file length, monotonic offsets, and every
    /// token below the vocabulary size.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ reason: String) -> TokenFileError { .corrupt(path: path, reason: reason) }
        guard bytes.count >= Self.headerBytes, Array(bytes[0..<16]) == Self.magic else {
            throw fail("it does not start with the swift-cca token-file header; make it with `cca data prepare`")
        }
        func field(_ index: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: 16 + 8 * index, as: UInt64.self).littleEndian }
        guard field(0) == 1 else { throw fail("format version \(field(0)); this build reads version 1") }
        guard field(1) > 0, field(1) <= UInt64(UInt32.max), field(2) < 1 << 40, field(3) < 1 << 40 else {
            throw fail("vocabulary \(field(1)), \(field(2)) tokens and \(field(3)) documents are out of range")
        }
        (vocabSize, tokenCount, documentCount) = (Int(field(1)), Int(field(2)), Int(field(3)))
        let expected = Self.headerBytes + 4 * tokenCount + 8 * (documentCount + 1)
        guard bytes.count == expected else { throw fail("\(bytes.count) bytes where the header implies \(expected): truncated or padded") }
        guard let base = bytes.baseAddress else { throw fail("empty") }
        tokens = (base + Self.headerBytes).assumingMemoryBound(to: UInt32.self)
        // The offsets follow 4-byte tokens, so they may sit at an address that is no multiple of 8.
        let offsetBase = Self.headerBytes + 4 * tokenCount
        var offsets = [UInt64](repeating: 0, count: documentCount + 1)
        for index in 0...documentCount {
            offsets[index] = bytes.loadUnaligned(fromByteOffset: offsetBase + 8 * index, as: UInt64.self).littleEndian
        }
        guard offsets.first == 0, offsets.last == UInt64(tokenCount), zip(offsets, offsets.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw fail("the document offsets do not rise from 0 to the token count (an empty document, or a damaged table)")
        }
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: offsets.count)
        table.initialize(from: offsets, count: offsets.count)
        self.offsets = UnsafePointer(table)
        if let bad = (0..<tokenCount).first(where: { Int(tokens[$0]) >= vocabSize }) {
            throw fail("token \(tokens[bad]) at position \(bad) is outside the vocabulary of \(vocabSize)")
        }
    }

    deinit { UnsafeMutablePointer(mutating: offsets).deallocate() }

    /// Token `index` of the whole stream.
    @inline(__always)
    public func token(_ index: Int) -> Int { Int(tokens[index]) }

    /// The index of the document holding token `index` (binary search of the offsets).
    public func document(containing index: Int) -> Int {
        var (low, high) = (0, documentCount - 1)
        while low < high {
            let middle = (low + high + 1) / 2
            if Int(offsets[middle]) <= index { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// Where document `index` starts (`documentCount` gives the token count).
    public func documentStart(_ index: Int) -> Int { Int(offsets[index]) }

    /// Writes `documents` (token ids, each non-empty, below `vocabSize`) as a token file, atomically.
    public static func write(_ documents: [[Int]], vocabSize: Int, to path: String) throws {
        let tokenCount = documents.reduce(0) { $0 + $1.count }
        guard !documents.isEmpty, documents.allSatisfy({ !$0.isEmpty }) else { throw TokenFileError.emptyDocument(path: path) }
        var bytes = magic
        bytes.reserveCapacity(headerBytes + 4 * tokenCount + 8 * (documents.count + 1))
        for value in [1, vocabSize, tokenCount, documents.count] { withUnsafeBytes(of: UInt64(value).littleEndian) { bytes += $0 } }
        for document in documents {
            for token in document {
                guard (0..<vocabSize).contains(token) else { throw TokenFileError.tokenOutOfRange(token: token, vocabSize: vocabSize) }
                withUnsafeBytes(of: UInt32(token).littleEndian) { bytes += $0 }
            }
        }
        var offset = 0
        withUnsafeBytes(of: UInt64(0).littleEndian) { bytes += $0 }
        for document in documents {
            offset += document.count
            withUnsafeBytes(of: UInt64(offset).littleEndian) { bytes += $0 }
        }
        try writeAtomically(bytes, to: path)
    }
}

/// A token file that cannot be written or read.
public enum TokenFileError: Error, CustomStringConvertible, Equatable {
    case corrupt(path: String, reason: String)
    case emptyDocument(path: String)
    case tokenOutOfRange(token: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case let .corrupt(path, reason): "'\(path)' is not a usable token file: \(reason)"
        case let .emptyDocument(path): "no tokens to write to '\(path)': every document needs at least one token"
        case let .tokenOutOfRange(token, vocabSize): "token \(token) is outside the vocabulary of \(vocabSize)"
        }
    }
}
