/// A ZAYA model directory on the GPU: its load and upload time, prefill and B = 1 decode speed at a long
/// context, the bytes a B = 1 decode step reads (hence its bandwidth limit), and the throughput of a batch of
/// sequences decoding together (`cca bench zaya --device cuda --model DIR`).
public enum ZayaBenchmark {
    public struct Result: Sendable {
        /// Mapping the directory and converting its small weights on the host; uploading everything.
        public var loadSeconds: Double, uploadSeconds: Double
        public var promptTokens: Int, prefillTokensPerSecond: Double
        /// Greedy B = 1 decoding after the prompt: median step time (replayed as CUDA graphs, then launched kernel
        /// by kernel for as many steps), and the bytes each step reads.
        public var decodeSteps: Int, decodeStepSeconds: Double, launchedStepSeconds: Double, bytesPerStep: Double
        public var batch: Int, batchPrompt: Int, batchTokensPerSecond: Double
        public var decodeTokensPerSecond: Double { 1 / decodeStepSeconds }
    }

    /// Runs the model in `path` in bfloat16: a random prompt of `prompt` tokens then `steps` greedy B = 1
    /// steps (sampled on the GPU, each host round trip included) with CUDA graphs and `steps` without, then `batch`
    /// sequences with prompts of `batchPrompt` tokens
    /// prefilled in one step and decoded `steps` steps together.
    public static func run(modelPath path: String, prompt: Int, steps: Int, batch: Int, batchPrompt: Int,
                           log: (String) -> Void = { print($0) }) throws -> Result {
        let clock = ContinuousClock()
        var start = clock.now
        let zaya = try ZayaModel(path: path)
        let loadSeconds = (clock.now - start).seconds
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName); \(path): \(zaya.config.hiddenLayers) layers, \(zaya.config.experts) experts, "
            + "vocab \(zaya.config.vocabSize); mapped in \(NumberFormatting.fixed(loadSeconds, 2)) s")
        start = clock.now
        let engine = try DeviceDecodeEngine(zaya: zaya, precision: .bfloat16, cacheTokens: prompt + 2 * steps + 2, maxSequences: 1,
                                            context: context)
        try context.exclusive { try context.synchronize() }
        let uploadSeconds = (clock.now - start).seconds
        log("uploaded in \(NumberFormatting.fixed(uploadSeconds, 2)) s")
        var generator = SplitMix64(seed: 3)
        func randomPrompt(_ count: Int) -> [Int] { (0..<count).map { _ in 3 + Int(generator.next() % UInt64(zaya.config.vocabSize - 3)) } }
        // Greedy decoding, sampled on the GPU as `cca generate` does: only the token comes back.
        func greedyStep(_ engine: DeviceDecodeEngine, _ chunks: [(slot: Int, tokens: [Int])]) throws -> [Int] {
            var samplers = try [Sampler?](repeating: Sampler(temperature: 0), count: chunks.count)
            return try engine.sampledStep(chunks, samplers: &samplers).map { $0 ?? 0 }
        }

        // A short warm-up compiles (or loads) every kernel outside the timings.
        let warm = try engine.makeSlot(capacity: 8)
        _ = try engine.step([(slot: warm, tokens: randomPrompt(4))])
        _ = try engine.step([(slot: warm, tokens: [1])])
        engine.freeSlot(warm)
        let slot = try engine.makeSlot(capacity: prompt + 2 * steps + 1)
        start = clock.now
        var token = try greedyStep(engine, [(slot: slot, tokens: randomPrompt(prompt))])[0]
        let prefillSeconds = (clock.now - start).seconds
        func medianStep() throws -> Double {
            var times: [Double] = []
            for _ in 0..<steps {
                start = clock.now
                token = try greedyStep(engine, [(slot: slot, tokens: [token])])[0]
                times.append((clock.now - start).seconds)
            }
            return times.sorted()[times.count / 2]
        }
        let stepSeconds = try medianStep()
        let replays = engine.graphReplays
        engine.usesGraphs = false
        let launchedSeconds = try medianStep()
        engine.usesGraphs = true
        log("B=1: prefill \(prompt) tokens in \(NumberFormatting.fixed(prefillSeconds, 3)) s, decode step (context \(prompt)) "
            + NumberFormatting.fixed(stepSeconds * 1000, 3) + " ms as CUDA graphs (\(replays) replays"
            + (engine.graphFailure.map { ", capture failed: \($0)" } ?? "") + "), "
            + NumberFormatting.fixed(launchedSeconds * 1000, 3) + " ms kernel by kernel")

        // The batch's engine shares the resident model; only its cache is new.
        let batchEngine = try DeviceDecodeEngine(cacheTokens: batch * (batchPrompt + steps + 1), maxSequences: batch,
                                                 context: context) { engine.model }
        let slots = try (0..<batch).map { _ in try batchEngine.makeSlot(capacity: batchPrompt + steps + 1) }
        var batchTokens = try greedyStep(batchEngine, slots.map { (slot: $0, tokens: randomPrompt(batchPrompt)) })
        start = clock.now
        for _ in 0..<steps {
            batchTokens = try greedyStep(batchEngine, zip(slots, batchTokens).map { (slot: $0, tokens: [$1]) })
        }
        let batchSeconds = (clock.now - start).seconds
        log("B=\(batch): \(steps) steps after prompts of \(batchPrompt) in \(NumberFormatting.fixed(batchSeconds, 3)) s")
        return Result(loadSeconds: loadSeconds, uploadSeconds: uploadSeconds, promptTokens: prompt,
                      prefillTokensPerSecond: Double(prompt) / prefillSeconds, decodeSteps: steps, decodeStepSeconds: stepSeconds,
                      launchedStepSeconds: launchedSeconds,
                      bytesPerStep: bytesPerDecodeStep(zaya.config, context: prompt), batch: batch, batchPrompt: batchPrompt,
                      batchTokensPerSecond: Double(batch * steps) / batchSeconds)
    }

    /// The bytes one B = 1 decode step must read at `context` cached tokens, in bfloat16: every layer's
    /// attention projections, one expert's gate|up and down, the float32 router and norms, the cached keys and
    /// values, and the LM head (the embedding row is negligible).
    public static func bytesPerDecodeStep(_ config: ZayaConfig, context: Int) -> Double {
        let (e, d, hq, hkv) = (Double(config.hiddenSize), Double(config.headDim), Double(config.attentionHeads), Double(config.keyValueHeads))
        let (i, r, classes) = (Double(config.moeIntermediateSize), Double(config.routerHiddenSize), Double(config.experts + 1))
        let attention = 2 * (e * (hq * d + 2 * hkv * d) + hq * d * e)
        let expert = 2 * 3 * i * e
        let router = 4 * (r * e + 2 * r * r + classes * r)
        let cache = 2 * 2 * Double(context) * hkv * d
        let layer = attention + expert + router + cache
        return Double(config.hiddenLayers) * layer + 2 * Double(config.vocabSize) * e
    }
}
