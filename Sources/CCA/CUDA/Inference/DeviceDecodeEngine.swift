/// The ``DecodeEngine`` of a ``LanguageModel`` resident on the GPU: the ``Scheduler`` and `cca serve` run on
/// it as on the CPU engine. Every step runs all its slots' chunks (prompt pieces and single tokens) as one
/// ragged batch of rows through the model and the paged decode cache (``DeviceDecodeCache``); the logits
/// after each chunk come back as float32 for the scheduler's sampler.
///
/// Not batch-invariant: cuBLAS picks its kernel by the number of rows, and the decode attention splits the
/// context by the batch, so the last bits of a slot's logits can change with the other slots of a step.
///
/// A step of one token per sequence runs as a CUDA graph (``CUDAGraph``) once its shape (``DeviceDecodeStep/GraphKey``:
/// the number of sequences, their page-table width and the context's size class) has run once uncaptured:
/// the step's hundreds of small launches become one, and only the step's index arrays are copied in before
/// it. A replay runs the very kernels of an uncaptured step with the same arguments, so its logits are the
/// same bits. Steps with longer chunks (prompts) run uncaptured.
///
/// Not thread-safe: the one caller is the scheduler's decode loop (hence `@unchecked Sendable`); every call
/// runs inside the context's exclusive section.
public final class DeviceDecodeEngine: DecodeEngine, @unchecked Sendable {
    let model: any DeviceDecodingModel
    let cache: DeviceDecodeCache
    let context: CUDAContext

    /// Whether steps of single tokens replay as CUDA graphs (the default). Off, every step launches its kernels.
    public var usesGraphs = true
    /// Why graphs were turned off, when a capture failed (the step then ran uncaptured, and so do the rest).
    public private(set) var graphFailure: String?
    /// Graphs kept at most; the least recently used goes first (each keeps its step's temporaries).
    public static let maximumGraphs = 8

    private struct CapturedStep {
        let graph: CUDAGraph, inputs: DeviceBuffer, logits: DeviceTensor
    }
    private var graphs: [DeviceDecodeStep.GraphKey: CapturedStep] = [:]
    private var graphUse: [DeviceDecodeStep.GraphKey] = []
    private var shapesSeen: Set<DeviceDecodeStep.GraphKey> = []

    /// Graphs captured so far, and replays of them (for benchmarks and tests).
    public private(set) var graphCaptures = 0, graphReplays = 0

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
    /// the token ids come back to the host. Chunks without a sampler draw nothing (the kernel runs them
    /// greedy, and their tokens are dropped).
    /// - Throws: as ``step(_:)``.
    public func sampledStep(_ chunks: [(slot: Int, tokens: [Int])], samplers: inout [Sampler?]) throws -> [Int?] {
        precondition(samplers.count == chunks.count, "\(samplers.count) samplers for \(chunks.count) chunks")
        guard !chunks.isEmpty else { return [] }
        var rowSamplers = try samplers.map { try $0 ?? Sampler(temperature: 0) }
        let tokens = try run(chunks) { [context] logits in try Sampler.sample(logits: logits, samplers: &rowSamplers, context: context).tokens }
        for index in samplers.indices where samplers[index] != nil { samplers[index] = rowSamplers[index] }
        return zip(tokens, samplers).map { token, sampler in sampler.map { _ in token } }
    }

    /// Checks the chunks, runs them through the model and the cache (as a graph when it can), and hands the
    /// logits `[chunks, vocab]` on the device to `finish` (inside the context's exclusive section); the slots'
    /// lengths advance after.
    private func run<Result>(_ chunks: [(slot: Int, tokens: [Int])], _ finish: (DeviceTensor) throws -> Result) throws -> Result {
        let sequences = try checkedStates(chunks, in: cache.sequences) { ($0.length, $0.capacity) }
        let layout = zip(sequences, chunks).map { ($0.state, $0.length, $1.tokens.count, $0.pages) }
        let tokens = chunks.flatMap(\.tokens)
        let result = try context.exclusive { () -> Result in
            if usesGraphs, let key = DeviceDecodeStep.GraphKey(sequences: layout),
               let logits = try replay(key, sequences: layout, tokens: tokens) {
                return try finish(logits)
            }
            var step = try DeviceDecodeStep(sequences: layout, tokens: tokens, context: context)
            return try finish(try model.forward(step: &step, cache: cache, context: context))
        }
        for (sequence, chunk) in zip(sequences, chunks) { cache.setLength(chunk.slot, sequence.length + chunk.tokens.count) }
        return result
    }

    /// The step of shape `key` run as a graph: replayed with the step's arrays copied into the graph's inputs,
    /// or captured first when the shape has run once uncaptured (so its kernels are loaded and cuBLAS has
    /// chosen its algorithms); nil when the shape is new (it runs uncaptured this time) or capturing failed.
    private func replay(_ key: DeviceDecodeStep.GraphKey, sequences: [(state: Int, start: Int, length: Int, pages: [Int32])],
                        tokens: [Int]) throws -> DeviceTensor? {
        if let captured = graphs[key] {
            _ = try DeviceDecodeStep(sequences: sequences, tokens: tokens, inputs: captured.inputs, context: context)
            try captured.graph.launch(on: context)
            graphUse.removeAll { $0 == key }
            graphUse.append(key)
            graphReplays += 1
            return captured.logits
        }
        if shapesSeen.insert(key).inserted { return nil }  // a new shape runs uncaptured first
        // The captured kernels read this step's arrays where its upload put them: the graph's inputs.
        var step = try DeviceDecodeStep(sequences: sequences, tokens: tokens, context: context)
        let captured: (graph: CUDAGraph, result: DeviceTensor)
        do {
            captured = try context.capture { try model.forward(step: &step, cache: cache, context: context) }
        } catch {
            (usesGraphs, graphFailure) = (false, "\(error)")
            return nil
        }
        if graphs.count >= Self.maximumGraphs, let oldest = graphUse.first {
            graphs[oldest] = nil
            graphUse.removeFirst()
        }
        graphs[key] = CapturedStep(graph: captured.graph, inputs: step.inputs, logits: captured.result)
        graphCaptures += 1
        return try replay(key, sequences: sequences, tokens: tokens)
    }

    public func freeSlot(_ slot: Int) { cache.remove(slot) }
}

/// A model resident on the GPU that ``DeviceDecodeEngine`` steps: ``DeviceDecodeModel`` (a ``LanguageModel``)
/// or ``DeviceZayaModel``.
protocol DeviceDecodingModel {
    var vocabSize: Int { get }
    /// Logits `[sequences, vocab]` after each sequence's last row, for the step's tokens.
    func forward(step: inout DeviceDecodeStep, cache: DeviceDecodeCache, context: CUDAContext) throws -> DeviceTensor
    /// The decode cache for this model: `pageCount` pages per layer and `stateSlots` sequences.
    func makeCache(pageCount: Int, stateSlots: Int, context: CUDAContext) throws -> DeviceDecodeCache
}
