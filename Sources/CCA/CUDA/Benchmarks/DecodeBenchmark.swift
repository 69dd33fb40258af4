import Foundation

/// Decode on the GPU (bfloat16): the decode attention alone over a paged cache, and whole decode steps of a
/// model through ``DeviceDecodeEngine``, with every sequence's cache already holding `context` tokens.
public enum DecodeBenchmark {
    /// One timing. `method` is `attention-<shape>` (the kernel alone) or `step-<kind>` (a whole model step,
    /// embedding to logits on the host).
    public struct Measurement: Sendable {
        public var method: String
        public var batch: Int, context: Int
        /// Median microseconds per call.
        public var microseconds: Double
        /// Attention: the cache bytes read (keys and values of every cached token) per second.
        public var bytesPerSecond: Double?
        /// Steps: tokens produced per second (`batch` per step).
        public var tokensPerSecond: Double?

        public init(method: String, batch: Int, context: Int, microseconds: Double, bytesPerSecond: Double? = nil,
                    tokensPerSecond: Double? = nil) {
            (self.method, self.batch, self.context, self.microseconds) = (method, batch, context, microseconds)
            (self.bytesPerSecond, self.tokensPerSecond) = (bytesPerSecond, tokensPerSecond)
        }
    }

    /// The attention shapes (d = 128): CCGQA's latent cache (8 query, 2 KV heads, the ZAYA1 shape) and MHA's
    /// (16 heads), as in the PyTorch anchor.
    public static let attentionShapes: [(name: String, queryHeads: Int, keyValueHeads: Int)] = [("ccgqa", 8, 2), ("mha", 16, 16)]

    /// Times the decode attention of every shape at every (batch, context) (MHA only where `mhaContexts`
    /// holds the context), one query token per sequence, `repetitions` event-timed runs after warm-up.
    public static func attention(batches: [Int], contexts: [Int], mhaContexts: [Int], repetitions: Int = 50,
                                 log: (String) -> Void = { print($0) }) throws -> [Measurement] {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs, kernels for \(context.architecture)")
        var measurements: [Measurement] = []
        for shape in attentionShapes {
            let heads = Attention.Heads(queryHeads: shape.queryHeads, keyValueHeads: shape.keyValueHeads, keyDim: 128,
                                        valueDim: 128, scale: 1 / Double(128).squareRoot())
            for batch in batches {
                for length in contexts where shape.name != "mha" || mhaContexts.contains(length) {
                    let microseconds = try context.exclusive { () -> Double in
                        let pages = (length + DecodeAttention.pageTokens - 1) / DecodeAttention.pageTokens
                        // Random contents matter little to the time; zeros keep the setup fast at 128k tokens.
                        let keys = try context.empty([batch * pages, DecodeAttention.pageTokens, heads.keyValueHeads, 128], .bfloat16)
                        let values = try context.empty(keys.shape, .bfloat16)
                        try context.zero(keys)
                        try context.zero(values)
                        let table = try context.upload((0..<(batch * pages)).map(Int32.init))
                        let lengths = try context.upload([Int32](repeating: Int32(length), count: batch))
                        let q = try context.upload(Tensor<Float>(randomNormal: [batch, 1, heads.queryHeads, 128], seed: 5), .bfloat16)
                        let out = try context.empty([batch, 1, heads.queryHeads, 128], .bfloat16)
                        return 1000 * (try PrefillBenchmark.median(context, repetitions, [q]) { q in
                            try DecodeAttention.forward(q: q, keyCache: keys, valueCache: values, pageTable: table, maxPages: pages,
                                                        contextLengths: lengths, longestContext: length, heads: heads, into: out,
                                                        context: context)
                        })
                    }
                    let bytes = Double(batch * length * heads.keyValueHeads * 256 * 2)
                    let measurement = Measurement(method: "attention-" + shape.name, batch: batch, context: length,
                                                  microseconds: microseconds, bytesPerSecond: bytes / (microseconds / 1e6))
                    measurements.append(measurement)
                    log("attention \(shape.name) B=\(batch) context \(length): \(NumberFormatting.fixed(microseconds, 1)) us, "
                        + NumberFormatting.fixed(measurement.bytesPerSecond! / 1e12, 2) + " TB/s")
                }
            }
        }
        return measurements
    }

    /// Times whole decode steps (one token per sequence, host round trip included) of `kinds` models of the
    /// `wide` preset's width (E = 2048, d = 128; CCGQA Hq = 8, Hkv = 2; MHA 16 heads) with `layers` blocks,
    /// every sequence's cache holding `context` tokens: median wall time of `repetitions` steps, replayed as
    /// CUDA graphs (`step-<kind>`) and launched kernel by kernel (`step-<kind>-launches`).
    public static func steps(kinds: [AttentionKind], batches: [Int], context length: Int, layers: Int, repetitions: Int = 20,
                             log: (String) -> Void = { print($0) }) throws -> [Measurement] {
        let context = try CUDAContext.shared()
        var measurements: [Measurement] = []
        for kind in kinds {
            var config = LanguageModelConfig.preset(.wide, attention: kind)
            config.layers = layers
            let model = try LanguageModel<Float>(config: config, seed: 1)
            for batch in batches {
                for graphs in [true, false] {
                    let engine = try DeviceDecodeEngine(model: model, precision: .bfloat16, cacheTokens: batch * (length + repetitions + 3),
                                                        maxSequences: batch, context: context)
                    engine.usesGraphs = graphs
                    let slots = try (0..<batch).map { _ in try engine.makeSlot(capacity: length + repetitions + 3) }
                    // The caches' contents are not prefilled, only their lengths set: a step reads `length` tokens.
                    for slot in slots { engine.cache.setLength(slot, length) }
                    let step = { _ = try engine.step(slots.map { (slot: $0, tokens: [1]) }) }
                    try step()
                    try step()  // the shape's first step runs uncaptured, the second captures it
                    let clock = ContinuousClock()
                    let times = try (0..<repetitions).map { _ in
                        let start = clock.now
                        try step()
                        return (clock.now - start).seconds * 1e6
                    }.sorted()
                    let microseconds = times[times.count / 2]
                    let method = "step-" + kind.rawValue + (graphs ? "" : "-launches")
                    measurements.append(Measurement(method: method, batch: batch, context: length,
                                                    microseconds: microseconds, tokensPerSecond: Double(batch) / (microseconds / 1e6)))
                    log("\(method) (\(layers) layers) B=\(batch) context \(length): \(NumberFormatting.fixed(microseconds, 0)) us, "
                        + NumberFormatting.fixed(Double(batch) / (microseconds / 1e6), 0) + " tokens/s"
                        + (graphs ? ", \(engine.graphReplays) graph replays" + (engine.graphFailure.map { ", capture failed: \($0)" } ?? "") : ""))
                }
            }
        }
        return measurements
    }

    /// Anchor rows `method,batch,context,us,bytes_per_s,tokens_per_s` as scripts/decode_anchors.py writes them
    /// (`copy` rows: the device-to-device copy, bytes read plus written per second); `source` names the file
    /// in errors.
    public static func anchors(csv text: String, source: String) throws -> [Measurement] {
        try text.split(whereSeparator: \.isNewline).dropFirst().map { line -> Measurement in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 6, let batch = Int(fields[1]), let length = Int(fields[2]), let microseconds = Double(fields[3]) else {
                throw FileIOError(path: source, operation: "read an anchor row",
                                  reason: "'\(line)' is not method,batch,context,us,bytes_per_s,tokens_per_s")
            }
            return Measurement(method: fields[0], batch: batch, context: length, microseconds: microseconds,
                               bytesPerSecond: Double(fields[4]), tokensPerSecond: Double(fields[5]))
        }
    }
}
