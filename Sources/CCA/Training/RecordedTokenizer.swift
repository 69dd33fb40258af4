#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `tokenizer.json` a token directory (`cca data prepare --tokenizer`) or a training run keeps beside
/// its tokens or weights, so that whoever reads the ids later turns them into the same text.
///
/// The file is kept byte for byte as it was given, and a run stores its FNV-1a checksum
/// (``TrainingSettings/tokenizerChecksum``), so that a replaced or edited tokenizer is caught on load.
public struct RecordedTokenizer: Sendable {
    public static let fileName = "tokenizer.json"

    /// The file's bytes, as read.
    public let bytes: [UInt8]
    public let tokenizer: BPETokenizer

    /// Reads and parses a `tokenizer.json`.
    /// - Throws: ``FileIOError`` or ``TokenizerError`` naming the file.
    public init(contentsOf path: String) throws {
        bytes = try readFile(path, limit: BPETokenizer.maxFileBytes)
        tokenizer = try BPETokenizer(jsonBytes: bytes, source: "'\(path)'")
    }

    /// FNV-1a of the file's bytes.
    public var checksum: UInt64 {
        var hash = FNV1a()
        for byte in bytes { hash.add(UInt64(byte)) }
        return hash.value
    }

    /// The tokenizer recorded in `directory`; nil when it holds none.
    public static func load(in directory: String) throws -> RecordedTokenizer? {
        let path = directory + "/" + fileName
        var info = stat()
        return stat(path, &info) == 0 ? try RecordedTokenizer(contentsOf: path) : nil
    }

    /// Writes the file into `directory`, atomically.
    public func write(in directory: String) throws {
        try writeAtomically(bytes, to: directory + "/" + Self.fileName)
    }
}

/// The 64-bit FNV-1a hash, fed one value at a time: a cheap check that data read again is the data seen before.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ element: UInt64) { value = (value ^ element) &* 0x100_0000_01b3 }
}
