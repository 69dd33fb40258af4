/// The ``DecodeEngine`` of a ``LanguageModel`` resident on the GPU: the ``Scheduler`` and `cca serve` run on
/// it as on the CPU engine. Every step runs all its slots' chunks (prompt pieces and single tokens) as one
/// ragged batch of rows through the model and the paged decode cache (``DeviceDecodeCache``); the logits
/// after each chunk come back as float32 for the scheduler's sampler.
///
/// Not batch-invariant: cuBLAS picks its kernel by the number of rows, and the decode attention splits the
/// context by the batch, so the last bits of a slot's logits can change with the other slots of a step.
///
/// Not thread-safe: the one caller is the scheduler's decode loop (hence `@unchecked Sendable`); every call
/// runs inside the context's exclusive section.
public final class DeviceDecodeEngine: DecodeEngine, @unchecked Sendable {
    let model: any DeviceDecodingModel
    let cache: DeviceDecodeCache
    let context: CUDAContext

    /// Uploads `model` in `precision` and makes a cache of `cacheTokens` tokens per layer for at most
    /// `maxSequences` slots at a time: slots whose capacities add up to `cacheTokens` always fit (the pool
    /// has a page more per slot, for each slot's partly filled last page).
    /// - Throws: ``CUDAError`` when the GPU or a kernel is missing, or the model's attention does not run there.
    public convenience init(model: LanguageModel<Float>, precision: CUDAPrecision, cacheTokens: Int, maxSequences: Int,
                            context: CUDAContext) throws {
        try self.init(cacheTokens: cacheTokens, maxSequences: maxSequences, context: context) {
            try DeviceDecodeModel(model, precision: precision, context: context)
        }
    }

    /// The engine of a ZAYA model (``ZayaModel``) uploaded in `precision`, its cache sized as for a
    /// ``LanguageModel``'s.
    /// - Throws: ``CUDAError``.
    public convenience init(zaya: ZayaModel, precision: CUDAPrecision, cacheTokens: Int, maxSequences: Int,
                            context: CUDAContext) throws {
        try self.init(cacheTokens: cacheTokens, maxSequences: maxSequences, context: context) {
            try DeviceZayaModel(zaya, precision: precision, context: context)
        }
    }

    /// The engine of the model `upload` puts on the device (inside the context's exclusive section).
    init(cacheTokens: Int, maxSequences: Int, context: CUDAContext, upload: () throws -> any DeviceDecodingModel) throws {
        guard cacheTokens > 0, maxSequences > 0, cacheTokens <= Int(Int32.max), maxSequences <= Int(Int32.max) else {
            throw ConfigError.invalidValue(name: "cache size", value: "\(cacheTokens) tokens, \(maxSequences) sequences",
                                           expected: "at least one token and one sequence, at most 2^31 - 1 of each")
        }
        self.context = context
        let pages = (cacheTokens + DecodeAttention.pageTokens - 1) / DecodeAttention.pageTokens + maxSequences
        (self.model, cache) = try context.exclusive {
            let resident = try upload()
            return (resident, try resident.makeCache(pageCount: pages, stateSlots: maxSequences, context: context))
        }
    }

    public var vocabSize: Int { model.vocabSize }

    public var isBatchInvariant: Bool { false }

    /// Slots allocated and not yet freed.
    public var slotCount: Int { cache.sequences.count }

    public func makeSlot(capacity: Int) throws -> Int { try context.exclusive { try cache.add(capacity: capacity) } }

    public func step(_ chunks: [(slot: Int, tokens: [Int])]) throws -> [[Float]] {
        guard !chunks.isEmpty else { return [] }
        let logits = try run(chunks) { try context.download($0) }
        let vocab = vocabSize
        return (0..<chunks.count).map { Array(logits.storage[($0 * vocab)..<(($0 + 1) * vocab)]) }
    }

    /// ``step(_:)`` with the next tokens sampled on the GPU: chunk `i`'s token drawn by `samplers[i]` as its
    /// ``Sampler/sample(_:)`` would draw from the step's logits (the same draw from its generator), so only
    /// the token ids come back to the host.
    /// - Throws: as ``step(_:)``.
    public func sampledStep(_ chunks: [(slot: Int, tokens: [Int])], samplers: inout [Sampler]) throws -> [Int] {
        precondition(samplers.count == chunks.count, "\(samplers.count) samplers for \(chunks.count) chunks")
        guard !chunks.isEmpty else { return [] }
        return try run(chunks) { [context] logits in try Sampler.sample(logits: logits, samplers: &samplers, context: context).tokens }
    }

    /// Checks the chunks, runs them through the model and the cache, and hands the logits `[chunks, vocab]` on
    /// the device to `finish` (inside the context's exclusive section); the slots' lengths advance after.
    private func run<Result>(_ chunks: [(slot: Int, tokens: [Int])], _ finish: (DeviceTensor) throws -> Result) throws -> Result {
        let sequences = try checkedStates(chunks, in: cache.sequences) { ($0.length, $0.capacity) }
        let result = try context.exclusive { () -> Result in
            var step = try DeviceDecodeStep(
                sequences: zip(sequences, chunks).map { ($0.state, $0.length, $1.tokens.count, $0.pages) }, context: context)
            return try finish(try model.forward(tokens: chunks.flatMap(\.tokens), step: &step, cache: cache, context: context))
        }
        for (sequence, chunk) in zip(sequences, chunks) { cache.setLength(chunk.slot, sequence.length + chunk.tokens.count) }
        return result
    }

    public func freeSlot(_ slot: Int) { cache.remove(slot) }
}

/// A model resident on the GPU that ``DeviceDecodeEngine`` steps: ``DeviceDecodeModel`` (a ``LanguageModel``)
/// or ``DeviceZayaModel``.
protocol DeviceDecodingModel {
    var vocabSize: Int { get }
    /// Logits `[sequences, vocab]` after each sequence's last row, for `tokens` (the step's rows).
    func forward(tokens: [Int], step: inout DeviceDecodeStep, cache: DeviceDecodeCache, context: CUDAContext) throws -> DeviceTensor
    /// The decode cache for this model: `pageCount` pages per layer and `stateSlots` sequences.
    func makeCache(pageCount: Int, stateSlots: Int, context: CUDAContext) throws -> DeviceDecodeCache
}
