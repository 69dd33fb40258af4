import ArgumentParser
import CCA

/// Decode speed and cache memory against context length for the five methods at one width.
struct DecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "CPU decode tokens/s and cache bytes per sequence vs context length for MHA, GQA, MLA, CCA and CCGQA.",
        discussion: "The default contexts take about 4 minutes on 2 cores (release build); a progress line shows the case being timed and the ETA.")

    /// Contexts beyond this would need caches of many gigabytes at the default width.
    static let maxContext = 1 << 20

    @OptionGroup var shape: ShapeOptions
    @Option(help: "Context lengths to prefill before timing decode steps.") var contexts: [Int] = [1024, 4096, 16384]
    @Option(help: "Decode steps timed at the end of each context (B = 1, one token per step).") var steps: Int = 32

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        for context in contexts where !(steps < context && context <= Self.maxContext) {
            throw ValidationError("each context must exceed --steps (\(steps)) and be at most \(Self.maxContext), got \(context)")
        }
    }

    func run() throws {
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
