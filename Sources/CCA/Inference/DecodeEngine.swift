/// A model that decodes many sequences together, one step at a time: all that the ``Scheduler`` needs of a
/// model, so that the CPU model and a GPU one serve requests the same way.
///
/// Each sequence lives in a slot made for its maximum length. One ``step(_:)`` feeds every listed slot its
/// next chunk (a piece of its prompt, or the one token just sampled) in one batched call and returns each
/// slot's logits after the last token of its chunk. The scheduler calls an engine from one thread at a time.
///
/// **Batch invariance.** An engine is batch-invariant when the logits of a slot depend only on the tokens
/// fed to that slot and the sizes of the chunks they came in, never on which other slots share a step. The
/// scheduler's promise that a request's tokens depend only on its own prompt, settings and seed holds
/// exactly with such an engine; with another, rounding can differ with the batch and, rarely, change a
/// sampled token.
public protocol DecodeEngine: AnyObject, Sendable {
    /// The number of logits per slot (the model's vocabulary).
    var vocabSize: Int { get }

    /// Whether a slot's logits are independent of the other slots in a step, bit for bit.
    var isBatchInvariant: Bool { get }

    /// A new, empty slot for a sequence of at most `capacity` tokens; its memory is allocated now.
    /// - Throws: when the slot cannot be allocated (``DecodeError/capacityTooLarge(capacity:bytesPerToken:)``).
    func makeSlot(capacity: Int) throws -> Int

    /// Feeds each slot its chunk (at least one token) in one batched call and returns, in the same order,
    /// each slot's logits `[vocabSize]` after its chunk's last token. A slot appears at most once.
    /// - Throws: for an unknown or repeated slot, an empty chunk, a token outside the vocabulary, or a chunk
    ///   that overflows its slot's capacity; no slot is changed then.
    func step(_ chunks: [(slot: Int, tokens: [Int])]) throws -> [[Float]]

    /// ``step(_:)`` with each chunk's next token drawn right away: chunk `i`'s by `samplers[i]`, as its
    /// ``Sampler/sample(_:)`` draws from the chunk's logits (one draw from its generator), or none where
    /// `samplers[i]` is nil (a piece of a prompt). An engine that can sample where its logits are (the GPU)
    /// returns only the tokens; the default samples on the host.
    /// - Throws: as ``step(_:)``.
    func sampledStep(_ chunks: [(slot: Int, tokens: [Int])], samplers: inout [Sampler?]) throws -> [Int?]

    /// Frees a slot's memory; the id is not used again.
    func freeSlot(_ slot: Int)
}

extension DecodeEngine {
    public func sampledStep(_ chunks: [(slot: Int, tokens: [Int])], samplers: inout [Sampler?]) throws -> [Int?] {
        precondition(samplers.count == chunks.count, "\(samplers.count) samplers for \(chunks.count) chunks")
        let logits = try step(chunks)
        return samplers.indices.map { samplers[$0]?.sample(logits[$0]) }
    }

    /// The checks a step makes before it changes any slot: each chunk's slot is known (its state in `slots`)
    /// and appears once, and each chunk has at least one token, all in the vocabulary, and fits in what its
    /// slot has left (`fill`: the slot's tokens so far and its capacity). Returns the chunks' states in order.
    func checkedStates<State>(_ chunks: [(slot: Int, tokens: [Int])], in slots: [Int: State],
                              fill: (State) -> (length: Int, capacity: Int)) throws -> [State] {
        var seen = Set<Int>()
        return try chunks.map { chunk in
            guard let state = slots[chunk.slot] else { throw DecodeError.unknownSequence(chunk.slot) }
            guard seen.insert(chunk.slot).inserted else { throw DecodeError.duplicateSequence(chunk.slot) }
            guard !chunk.tokens.isEmpty else { throw GenerationError.emptyPrompt }
            if let token = chunk.tokens.first(where: { !(0..<vocabSize).contains($0) }) {
                throw EmbeddingError.tokenOutOfRange(token: token, vocabSize: vocabSize)
            }
            let (length, capacity) = fill(state)
            let (total, overflow) = length.addingReportingOverflow(chunk.tokens.count)
            guard !overflow, total <= capacity else {
                throw DecodeError.contextFull(capacity: capacity, requested: overflow ? Int.max : total)
            }
            return state
        }
    }
}
