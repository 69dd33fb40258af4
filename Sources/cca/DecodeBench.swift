import ArgumentParser
import CCA

/// Decode speed and cache memory against context length for the five methods at one width.
struct DecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode speed: on the CPU, tokens/s and cache bytes per sequence vs context for MHA, GQA, MLA, CCA and CCGQA; on cuda, the decode attention and whole decode steps.",
        discussion: """
        CPU: the default contexts take about 4 minutes on 2 cores (release build); a progress line shows the case being timed and the ETA. \
        cuda: the decode attention alone over a paged bf16 cache (CCGQA's 8 query / 2 KV heads at every --batches x --contexts, \
        MHA's 16 heads at --step-context) with its bytes/s, and whole decode steps of a CCGQA and an MHA model of the same width \
        (E = 2048, d = 128, --layers blocks) at --step-context. The anchors come from `scripts/decode_anchors.py --csv FILE` \
        run in the same device call (`scripts/bench_decode.sh` runs both).
        """)

    /// Contexts beyond this would need caches of many gigabytes at the default width.
    static let maxContext = 1 << 20

    @OptionGroup var shape: ShapeOptions
    @Option(help: "Where to run: cpu or cuda.") var device: Device = .cpu
    @Option(help: "Context lengths (default: 1024, 4096, 16384 on the CPU; 1024, 16384, 131072 on cuda).") var contexts: [Int] = []
    @Option(help: "Decode steps timed at the end of each context (B = 1, one token per step; CPU).") var steps: Int = 32
    @Option(help: "cuda: batch sizes.") var batches: [Int] = [1, 8, 32]
    @Option(help: "cuda: the context of the whole-step timings and of the MHA attention.") var stepContext: Int = 16384
    @Option(help: "cuda: blocks of the models timed step by step.") var layers: Int = 4
    @Option(help: "cuda: anchor timings (CSV from scripts/decode_anchors.py).") var anchors: String?
    @Option(help: "cuda: write every timing (ours and anchors) here as CSV.") var csv: String?
    @Option(help: "cuda: write the attention time against context here as SVG.") var svg: String?

    var effectiveContexts: [Int] { contexts.isEmpty ? (device == .cpu ? [1024, 4096, 16384] : [1024, 16384, 131072]) : contexts }

    func validate() throws {
        guard device == .cpu else {
            for value in effectiveContexts + batches + [stepContext, layers] where !(1...Self.maxContext).contains(value) {
                throw ValidationError("contexts, batches, --step-context and --layers must be from 1 to \(Self.maxContext), got \(value)")
            }
            return
        }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        for context in effectiveContexts where !(steps < context && context <= Self.maxContext) {
            throw ValidationError("each context must exceed --steps (\(steps)) and be at most \(Self.maxContext), got \(context)")
        }
    }

    func run() throws {
        guard device == .cpu else { return try runOnDevice() }
        let contexts = effectiveContexts
        let shapes = shape.shapes
        print("CPU: \(coreCount) cores, \(MatrixMultiply.backendName); E=\(shapes.hiddenSize), d=\(shapes.headDim), B=1, float32")
        // Each case's share of the work is its forward FLOPs (prefill and decode steps together), for the ETA.
        let cases = try contexts.flatMap { context in
            try AttentionKind.allCases.map { method in (context, method, try shapes.cost(method).forwardFLOPs(length: context)) }
        }
        let progress = ProgressReporter("bench decode", total: cases.reduce(0) { $0 + $1.2 })
        var rows: [[String]] = [], done = 0.0
        for (context, method, work) in cases {
            progress.update(done: done, status: "context \(context), \(method.rawValue)")
            rows.append(try measure(try shapes.layer(method, seed: 1), method: method, context: context))
            done += work
        }
        progress.finish(status: "\(cases.count) cases")
        printTable(["context", "method", "cache/seq", "fixed state", "prefill tok/s", "decode tok/s", "decode ms/token"], rows)
    }

    private func measure(_ layer: any AttentionLayer<Float>, method: AttentionKind, context: Int) throws -> [String] {
        // The cache holds exactly `context` tokens at the end: a prompt of context − steps, then the timed steps.
        let promptLength = context - steps
        let prompt = Tensor<Float>(randomNormal: [promptLength, layer.hiddenSize], seed: 2)
        let tokens = (0..<steps).map { Tensor<Float>(randomNormal: [1, layer.hiddenSize], seed: UInt64(3 + $0)) }
        let states = [try layer.makeState(capacity: context)]
        let clock = ContinuousClock()
        let prefillStart = clock.now
        _ = try layer.decode([prompt], states: states)
        let prefillSeconds = (clock.now - prefillStart).seconds
        let decodeStart = clock.now
        for token in tokens { _ = try layer.decode([token], states: states) }
        let decodeSeconds = (clock.now - decodeStart).seconds
        return ["\(context)", method.rawValue, formatBytes(states[0].cacheBytes), formatBytes(states[0].fixedStateBytes),
                format(Double(promptLength) / prefillSeconds), format(Double(steps) / decodeSeconds),
                format(decodeSeconds / Double(steps) * 1000)]
    }
}

/// Bytes with a binary suffix.
func formatBytes(_ bytes: Int) -> String {
    let value = Double(bytes)
    for (scale, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes >= 1 << scale {
        return format(value / Double(1 << scale)) + " " + unit
    }
    return "\(bytes) B"
}
