/// The ``DecodeEngine`` of a ``LanguageModel`` on the CPU: every slot holds one decode state per layer.
///
/// Not thread-safe: the one caller is the scheduler's decode loop (hence `@unchecked Sendable`).
public final class CPUDecodeEngine: DecodeEngine, @unchecked Sendable {
    /// How a step's chunks go through the model.
    public enum Batching: String, Sendable, CaseIterable {
        /// One forward pass per slot: a slot's logits depend only on its own tokens (batch-invariant), at
        /// the price of reading the weights once per slot.
        case perSlot = "per-slot"
        /// One forward pass over the ragged batch of all chunks: the weights are read once per step, but a
        /// BLAS library picks its kernel by the number of rows, so the logits can differ in the last bits
        /// with the batch (and, rarely, a sampled token with them).
        case ragged
    }

    public let model: LanguageModel<Float>
    public let batching: Batching
    private var slots: [Int: [DecodeState<Float>]] = [:]
    private var nextSlot = 0

    public init(model: LanguageModel<Float>, batching: Batching = .perSlot) { (self.model, self.batching) = (model, batching) }

    public var vocabSize: Int { model.config.vocabSize }

    public var isBatchInvariant: Bool { batching == .perSlot }

    /// Slots allocated and not yet freed.
    public var slotCount: Int { slots.count }

    public func makeSlot(capacity: Int) throws -> Int {
        let states = try model.makeStates(capacity: capacity)
        defer { nextSlot += 1 }
        slots[nextSlot] = states
        return nextSlot
    }

    public func step(_ chunks: [(slot: Int, tokens: [Int])]) throws -> [[Float]] {
        // Checked for every slot before any is advanced, so a refused step changes nothing.
        let states = try checkedStates(chunks, in: slots) { ($0[0].length, $0[0].capacity) }
        switch batching {
        case .perSlot: return try zip(chunks, states).flatMap { try forward([$0.0.tokens], states: [$0.1]) }
        case .ragged: return try forward(chunks.map(\.tokens), states: states)
        }
    }

    public func freeSlot(_ slot: Int) { slots[slot] = nil }

    /// One forward pass over `sequences`, each continuing its states; the logits after each one's last token.
    private func forward(_ sequences: [[Int]], states: [[DecodeState<Float>]]) throws -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        let layout = try SequenceLayout(lengths: sequences.map(\.count))
        let perLayer = (0..<model.config.layers).map { layer in states.map { $0[layer] } }
        let logits = try model.forward(tokens: sequences.flatMap { $0 }, layout: layout, states: perLayer).logits
        let vocab = vocabSize
        return layout.sequences.map { rows in Array(logits.storage[((rows.upperBound - 1) * vocab)..<(rows.upperBound * vocab)]) }
    }
}
