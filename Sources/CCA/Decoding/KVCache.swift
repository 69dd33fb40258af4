/// The per-token cache of one sequence in one layer, allocated once for `capacity` tokens.
///
/// Each token holds `keyWidth` key numbers and `valueWidth` value numbers (MLA keeps one latent row and
/// reads its values from the keys, so its `valueWidth` is 0). A class, so that the attention core can read
/// the rows in place while other sequences of a batch are being filled.
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public let keyWidth: Int, valueWidth: Int
    /// Tokens stored so far.
    public private(set) var length = 0
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    public init(capacity: Int, keyWidth: Int, valueWidth: Int) {
        (self.capacity, self.keyWidth, self.valueWidth) = (capacity, keyWidth, valueWidth)
        keys = .allocate(capacity: max(1, capacity * keyWidth))
        values = .allocate(capacity: max(1, capacity * valueWidth))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held for keys and values (all `capacity` tokens).
    public var bytes: Int { capacity * (keyWidth + valueWidth) * MemoryLayout<Float>.size }

    /// Throws unless `rows` more tokens fit.
    public func reserve(_ rows: Int) throws {
        guard length + rows <= capacity else { throw DecodeError.contextFull(capacity: capacity, requested: length + rows) }
    }

    /// Appends `rows` tokens whose keys (and values) are rows of the given strided buffers.
    func append(rows: Int, keys newKeys: UnsafePointer<Float>, keyStride: Int,
                values newValues: UnsafePointer<Float>? = nil, valueStride: Int = 0) throws {
        try reserve(rows)
        for r in 0..<rows {
            (keys + (length + r) * keyWidth).update(from: newKeys + r * keyStride, count: keyWidth)
            if let newValues { (values + (length + r) * valueWidth).update(from: newValues + r * valueStride, count: valueWidth) }
        }
        length += rows
    }
}

/// A decoding request that cannot be served.
public enum DecodeError: Error, CustomStringConvertible, Equatable {
    case contextFull(capacity: Int, requested: Int)
    case chunkCount(chunks: Int, states: Int)
    case chunkShape(index: Int, shape: [Int], hiddenSize: Int)
    case unknownSequence(Int)
    case duplicateSequence(Int)
    case chunksDoNotSum(chunks: [Int], length: Int)
    case maskWithChunks

    public var description: String {
        switch self {
        case let .contextFull(capacity, requested):
            return "the sequence would reach \(requested) tokens but its cache holds \(capacity); start it with a larger capacity (maximum context)"
        case let .chunkCount(chunks, states):
            return "\(chunks) chunks were given for \(states) sequences; give one chunk (possibly empty) per sequence"
        case let .chunkShape(index, shape, hiddenSize):
            return "chunk \(index) has shape \(shape); a chunk must be [tokens, \(hiddenSize)]"
        case let .unknownSequence(id): return "no sequence \(id) in this batch"
        case let .duplicateSequence(id): return "sequence \(id) is already in this batch"
        case let .chunksDoNotSum(chunks, length):
            return "chunk lengths \(chunks) sum to \(chunks.reduce(0, +)), not the sequence length \(length)"
        case .maskWithChunks:
            return "a padding mask cannot be combined with --chunks: decoding gives each sequence its own length, so pass unpadded sequences"
        }
    }
}
