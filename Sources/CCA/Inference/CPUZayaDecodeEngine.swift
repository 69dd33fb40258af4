/// The ``DecodeEngine`` of a ``ZayaModel`` on the CPU, for the scheduler behind `cca serve --model`: each slot
/// is a ``ZayaSession``, and a step feeds the slots one after another, so a slot's logits never depend on
/// the rest of the batch.
///
/// Not thread-safe: the one caller is the scheduler's decode loop (hence `@unchecked Sendable`).
public final class CPUZayaDecodeEngine: DecodeEngine, @unchecked Sendable {
    public let model: ZayaModel
    private var slots: [Int: ZayaSession] = [:]
    private var nextSlot = 0

    public init(model: ZayaModel) { self.model = model }

    public var vocabSize: Int { model.config.vocabSize }

    public var isBatchInvariant: Bool { true }

    public func makeSlot(capacity: Int) throws -> Int {
        let session = try ZayaSession(model: model, capacity: capacity)
        defer { nextSlot += 1 }
        slots[nextSlot] = session
        return nextSlot
    }

    public func step(_ chunks: [(slot: Int, tokens: [Int])]) throws -> [[Float]] {
        // Checked for every slot before any is fed, so a refused step changes nothing.
        let sessions = try checkedStates(chunks, in: slots) { ($0.length, $0.capacity) }
        return try zip(chunks, sessions).map { chunk, session in try session.feed(chunk.tokens) }
    }

    public func freeSlot(_ slot: Int) { slots[slot] = nil }
}
