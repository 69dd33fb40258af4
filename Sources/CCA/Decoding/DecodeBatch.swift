/// A running batch of sequences decoded together through one layer: sequences join and leave between
/// steps, each with its own length, position and state.
public final class DecodeBatch<Layer: DecodingAttention> {
    public let layer: Layer
    private var states: [Int: Layer.DecodeState] = [:]

    public init(layer: Layer) { self.layer = layer }

    /// Identifiers of the sequences in the batch, in ascending order.
    public var sequenceIDs: [Int] { states.keys.sorted() }

    /// Bytes held by all states (caches and fixed state).
    public var bytes: Int { states.values.reduce(0) { $0 + $1.bytes } }

    /// The state of sequence `id`.
    public func state(_ id: Int) throws -> Layer.DecodeState {
        guard let state = states[id] else { throw DecodeError.unknownSequence(id) }
        return state
    }

    /// Adds an empty sequence whose cache holds up to `capacity` tokens (allocated now).
    public func add(_ id: Int, capacity: Int) throws {
        guard states[id] == nil else { throw DecodeError.duplicateSequence(id) }
        states[id] = layer.makeDecodeState(capacity: capacity)
    }

    /// Removes a sequence and frees its state.
    public func remove(_ id: Int) throws {
        guard states.removeValue(forKey: id) != nil else { throw DecodeError.unknownSequence(id) }
    }

    /// Continues the named sequences with their chunks `[S_i, E]` (a prompt, one token, or more) in one
    /// batched call, and returns each sequence's outputs `[S_i, E]`.
    public func step(_ chunks: [Int: Tensor]) throws -> [Int: Tensor] {
        let ids = chunks.keys.sorted()
        var selected = try ids.map { try state($0) }
        let outputs = try layer.decode(ids.map { chunks[$0]! }, states: &selected)
        for (id, state) in zip(ids, selected) { states[id] = state }
        return Dictionary(uniqueKeysWithValues: zip(ids, outputs))
    }
}
