/// What one sequence carries through one attention layer from one chunk to the next: the KV cache
/// (allocated once for `capacity` tokens) and the layer's fixed state (CCA's convolution history and
/// previous delayed value; empty for the other kinds).
///
/// A class, so that the attention reads the cache rows in place while other sequences of a batch are
/// being filled, and so that a layer's forward pass advances the states it is handed.
public final class DecodeState<Scalar: TensorScalar>: @unchecked Sendable {
    public let capacity: Int
    /// Numbers per token in the cache: keys, and values (MLA reads its values from its keys: 0).
    public let keyWidth: Int, valueWidth: Int
    /// Tokens seen so far: the position of the next one.
    public private(set) var length = 0
    let keys: UnsafeMutablePointer<Scalar>
    let values: UnsafeMutablePointer<Scalar>
    /// The layer's fixed state besides the cache, laid out as the layer defines it.
    var carry: [Scalar]

    /// A state with room for `capacity` tokens and `carry` as its fixed state.
    /// - Throws: ``DecodeError/capacityTooLarge(capacity:bytes:)`` when the cache size overflows.
    init(capacity: Int, keyWidth: Int, valueWidth: Int, carry: [Scalar]) throws {
        let perToken = keyWidth + valueWidth
        let (elements, overflow) = max(1, capacity).multipliedReportingOverflow(by: max(1, perToken))
        guard capacity >= 0, !overflow, elements <= Int.max / MemoryLayout<Scalar>.stride else {
            throw DecodeError.capacityTooLarge(capacity: capacity, bytesPerToken: perToken * MemoryLayout<Scalar>.stride)
        }
        (self.capacity, self.keyWidth, self.valueWidth, self.carry) = (capacity, keyWidth, valueWidth, carry)
        keys = .allocate(capacity: max(1, capacity * keyWidth))
        values = .allocate(capacity: max(1, capacity * valueWidth))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held for keys and values (all `capacity` tokens).
    public var cacheBytes: Int { capacity * (keyWidth + valueWidth) * MemoryLayout<Scalar>.size }
    /// Bytes of the fixed state besides the cache.
    public var fixedStateBytes: Int { carry.count * MemoryLayout<Scalar>.size }
    /// Every byte the state holds.
    public var bytes: Int { cacheBytes + fixedStateBytes }

    /// Throws unless `rows` more tokens fit.
    public func reserve(_ rows: Int) throws {
        let (total, overflow) = length.addingReportingOverflow(rows)
        guard rows >= 0, !overflow, total <= capacity else {
            throw DecodeError.contextFull(capacity: capacity, requested: overflow ? Int.max : total)
        }
    }

    /// Appends the rows of `newKeys` `[rows, keyWidth]` (and `newValues` `[rows, valueWidth]`).
    func append(keys newKeys: Tensor<Scalar>, values newValues: Tensor<Scalar>?) throws {
        let rows = newKeys.count / max(1, keyWidth)
        try reserve(rows)
        newKeys.storage.withUnsafeBufferPointer { (keys + length * keyWidth).update(from: $0.baseAddress!, count: rows * keyWidth) }
        if let newValues, valueWidth > 0 {
            newValues.storage.withUnsafeBufferPointer { (values + length * valueWidth).update(from: $0.baseAddress!, count: rows * valueWidth) }
        }
        length += rows
    }
}

/// A decoding request that cannot be served.
public enum DecodeError: Error, CustomStringConvertible, Equatable {
    case contextFull(capacity: Int, requested: Int)
    case capacityTooLarge(capacity: Int, bytesPerToken: Int)
    case stateCount(sequences: Int, states: Int)
    case stateMismatch(layer: String)
    case unknownSequence(Int)
    case duplicateSequence(Int)
    case chunksDoNotSum(chunks: [Int], length: Int)
    case maskWithChunks
    case statesWithBackward

    public var description: String {
        switch self {
        case let .contextFull(capacity, requested):
            return "the sequence would reach \(requested) tokens but its cache holds \(capacity); start it with a larger capacity (maximum context)"
        case let .capacityTooLarge(capacity, bytesPerToken):
            return "a cache of \(capacity) tokens at \(bytesPerToken) bytes each does not fit in memory; ask for a smaller maximum context"
        case let .stateCount(sequences, states):
            return "\(sequences) sequences were given with \(states) decode states; give one state per sequence"
        case let .stateMismatch(layer):
            return "a decode state made for another layer was passed to \(layer); make states with this layer's makeState"
        case let .unknownSequence(id): return "no sequence \(id) in this batch"
        case let .duplicateSequence(id): return "sequence \(id) is already in this batch"
        case let .chunksDoNotSum(chunks, length):
            return "chunk lengths \(chunks) do not sum to the sequence length \(length); give non-negative lengths that add up to it"
        case .maskWithChunks:
            return "a padding mask cannot be combined with --chunks: decoding gives each sequence its own length, so pass unpadded sequences"
        case .statesWithBackward:
            return "a forward pass through decode states keeps nothing for a backward pass; train without states"
        }
    }
}
