/// A running batch of sequences decoded together through one layer: sequences join and leave between
/// steps, each with its own length, position and state.
public final class DecodeBatch<Scalar: TensorScalar> {
    public let layer: any AttentionLayer<Scalar>
    private var states: [Int: DecodeState<Scalar>] = [:]

    public init(layer: any AttentionLayer<Scalar>) { self.layer = layer }

    /// Identifiers of the sequences in the batch, in ascending order.
    public var sequenceIDs: [Int] { states.keys.sorted() }

    /// Bytes held by all states (caches and fixed state).
    public var bytes: Int { states.values.reduce(0) { $0 + $1.bytes } }

    /// The state of sequence `id`.
    public func state(_ id: Int) throws -> DecodeState<Scalar> {
        guard let state = states[id] else { throw DecodeError.unknownSequence(id) }
        return state
    }

    /// Adds an empty sequence whose cache holds up to `capacity` tokens (allocated now).
    public func add(_ id: Int, capacity: Int) throws {
        guard states[id] == nil else { throw DecodeError.duplicateSequence(id) }
        states[id] = try layer.makeState(capacity: capacity)
    }

    /// Removes a sequence and frees its state.
    public func remove(_ id: Int) throws {
        guard states.removeValue(forKey: id) != nil else { throw DecodeError.unknownSequence(id) }
    }

    /// Continues the named sequences with their chunks `[Sᵢ, E]` (a prompt, one token, or more) in one
    /// batched call, and returns each sequence's outputs `[Sᵢ, E]`.
    public func step(_ chunks: [Int: Tensor<Scalar>]) throws -> [Int: Tensor<Scalar>] {
        let ids = chunks.keys.sorted()
        let outputs = try layer.decode(ids.map { chunks[$0]! }, states: try ids.map { try state($0) })
        return Dictionary(uniqueKeysWithValues: zip(ids, outputs))
    }
}
