/// Times the GPU path with CUDA events: the attention kernel alone, and whole layers (device work only,
/// input already on the GPU), at the sizes of the report's comparisons (E = 2048, d = 128, bfloat16).
public enum CUDABenchmark {
    /// Logs one line per measurement: the median of `repetitions` runs after two warm-up runs, and for
    /// attention the rate in TFLOP/s counting the causal half of `4·B·S²·Hq·d`.
    public static func run(lengths: [Int] = [4096, 16384], repetitions: Int = 10, log: (String) -> Void = { print($0) }) throws {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs; median of \(repetitions) runs")
        for length in lengths {
            // (name, query heads, KV heads)
            for (name, queryHeads, keyValueHeads) in [("MHA 16 heads", 16, 16), ("CCA C=4 (4 latent heads)", 4, 4),
                                                      ("CCGQA Hq8 Hkv2 (ZAYA1)", 8, 2)] {
                let milliseconds = try context.exclusive {
                    let q = try context.upload(Tensor(randomNormal: [1, length, queryHeads, 128], seed: 1), .bfloat16)
                    let k = try context.upload(Tensor(randomNormal: [1, length, keyValueHeads, 128], seed: 2), .bfloat16)
                    let v = try context.upload(Tensor(randomNormal: [1, length, keyValueHeads, 128], seed: 3), .bfloat16)
                    return try median(context, repetitions) {
                        _ = try context.attention(q: q, k: k, v: v, scale: 1 / Float(128).squareRoot(), keyValid: nil)
                    }
                }
                let flops = 2 * Double(length) * Double(length) * Double(queryHeads) * 128
                log("attention \(name.padding(to: 26)) S=\(length): \(format(milliseconds)) ms, \(format(flops / Double(milliseconds) / 1e9)) TFLOP/s")
            }
            let layers: [(String, any AttentionLayer)] = [
                ("MHA E2048 16 heads", try MHA(hiddenSize: 2048, heads: 16, seed: 4)),
                ("GQA E2048 Hq16 Hkv4", try GQA(config: GQAConfig(hiddenSize: 2048, queryHeads: 16, keyValueHeads: 4), seed: 5)),
                ("CCA E2048 C=4", try CCA(config: CCAConfig(hiddenSize: 2048, queryHeads: 4, keyValueHeads: 4), seed: 6)),
                ("CCGQA E2048 Cq2 Ckv8", try CCA(config: CCAConfig(), seed: 7)),
            ]
            let x = Tensor(randomNormal: [1, length, 2048], seed: 8)
            for (name, layer) in layers {
                let gpu = try CUDALayer(layer)
                let milliseconds = try context.exclusive {
                    let input = try context.upload(x, .bfloat16)
                    return try median(context, repetitions) {
                        _ = try gpu.implementation.forward(input, keyValid: nil, context: context)
                    }
                }
                log("layer \(name.padding(to: 30)) S=\(length): \(format(milliseconds)) ms")
                if let cca = gpu.implementation as? DeviceCCA {
                    let prologue = try context.exclusive {
                        let input = try context.upload(x, .bfloat16)
                        return try median(context, repetitions) { _ = try cca.project(input, context: context) }
                    }
                    log("  of which steps 2-8 (projections, cca_prologue)   \(format(prologue)) ms")
                }
            }
        }
    }

    /// The CCA layer's steps timed one by one, for CCA (Hq = Hkv = 4) and CCGQA (Hq = 8, Hkv = 2) at E = 2048,
    /// d = 128, bfloat16: the whole layer, steps 2-8 (projections and prologue), the attention core on their
    /// output and the output projection; steps 2-8 also as their three launches. "rest" is the layer less
    /// its attention core.
    public static func runCCASteps(lengths: [Int] = [1024, 4096, 16384], repetitions: Int = 20,
                                   log: (String) -> Void = { print($0) }) throws {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs; median of \(repetitions) runs, ms")
        let layers = [("cca", CCAConfig(hiddenSize: 2048, queryHeads: 4, keyValueHeads: 4)), ("ccgqa", CCAConfig())]
        for (name, config) in layers {
            let cca = try DeviceCCA(try CCA(config: config, seed: 6), precision: .bfloat16, context: context)
            for length in lengths {
                let x = Tensor(randomNormal: [1, length, 2048], seed: 8)
                let (layer, steps, parts, core, output) = try context.exclusive {
                    let input = try context.upload(x, .bfloat16)
                    let projections = try context.linear(input, cca.projectionWeight)
                    let (q, k, v) = try cca.project(input, context: context)
                    let attended = try context.attention(q: q, k: k, v: v, scale: 1 / Float(128).squareRoot(), keyValid: nil)
                    return (try median(context, repetitions) { _ = try cca.forward(input, keyValid: nil, context: context) },
                            try median(context, repetitions) { _ = try cca.project(input, context: context) },
                            [try median(context, repetitions) { _ = try context.linear(input, cca.projectionWeight) },
                             try median(context, repetitions) { _ = try context.ccaValues(projections, config: config) },
                             try median(context, repetitions) {
                                 _ = try context.ccaPrologue(projections, weights: cca.prologue, config: config)
                             }],
                            try median(context, repetitions) {
                                _ = try context.attention(q: q, k: k, v: v, scale: 1 / Float(128).squareRoot(), keyValid: nil)
                            },
                            try median(context, repetitions) {
                                _ = try context.linear(attended.reshaped([1, length, config.queryWidth]), cca.outputWeight)
                            })
                }
                func ms(_ value: Float) -> String { NumberFormatting.fixed(Double(value), 3) }
                log("\(name.padding(to: 6)) S=\(length): layer \(ms(layer)), rest \(ms(layer - core)) (steps 2-8 \(ms(steps)) = "
                    + "projection \(ms(parts[0])) + values \(ms(parts[1])) + prologue \(ms(parts[2])); output projection "
                    + "\(ms(output))), attention core \(ms(core))")
            }
        }
    }

    private static func median(_ context: CUDAContext, _ repetitions: Int, _ body: () throws -> Void) throws -> Float {
        for _ in 0..<2 { try body() }
        let times = try (0..<repetitions).map { _ in try context.elapsedMilliseconds(body) }.sorted()
        return times[times.count / 2]
    }

    private static func format(_ value: some BinaryFloatingPoint) -> String {
        let hundredths = Int((Double(value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
