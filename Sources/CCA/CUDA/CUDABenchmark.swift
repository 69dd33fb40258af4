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

    /// Times the attention kernel alone on the shapes of the cuDNN comparison (B = 1, d = 128, bfloat16):
    /// MHA 16 heads, CCA 4 latent heads and CCGQA Hq 8 / Hkv 2, causal and not. Logs one line each,
    /// `ours <name> Hq <n> Hkv <n> S <n> causal <0|1> <ms> ms <rate> TFLOP/s`, the rate counting
    /// `4·S²·Hq·d`, halved when causal; `scripts/attention_vs_cudnn.py` reads these lines.
    public static func attention(lengths: [Int] = [1024, 4096, 16384], repetitions: Int = 20,
                                 log: (String) -> Void = { print($0) }) throws {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs; median of \(repetitions) runs")
        for length in lengths {
            for (name, queryHeads, keyValueHeads) in [("MHA", 16, 16), ("CCA", 4, 4), ("CCGQA", 8, 2)] {
                for causal in [true, false] {
                    let milliseconds = try context.exclusive {
                        let q = try context.upload(Tensor(randomNormal: [1, length, queryHeads, 128], seed: 1), .bfloat16)
                        let k = try context.upload(Tensor(randomNormal: [1, length, keyValueHeads, 128], seed: 2), .bfloat16)
                        let v = try context.upload(Tensor(randomNormal: [1, length, keyValueHeads, 128], seed: 3), .bfloat16)
                        return try median(context, repetitions) {
                            _ = try context.attention(q: q, k: k, v: v, scale: 1 / Float(128).squareRoot(), keyValid: nil,
                                                      causal: causal)
                        }
                    }
                    let flops = 4 * Double(length) * Double(length) * Double(queryHeads) * 128 / (causal ? 2 : 1)
                    log("ours \(name) Hq \(queryHeads) Hkv \(keyValueHeads) S \(length) causal \(causal ? 1 : 0) "
                        + "\(format(milliseconds, digits: 3)) ms \(format(flops / Double(milliseconds) / 1e9)) TFLOP/s")
                }
            }
        }
    }

    private static func median(_ context: CUDAContext, _ repetitions: Int, _ body: () throws -> Void) throws -> Float {
        for _ in 0..<2 { try body() }
        let times = try (0..<repetitions).map { _ in try context.elapsedMilliseconds(body) }.sorted()
        return times[times.count / 2]
    }

    private static func format(_ value: some BinaryFloatingPoint, digits: Int = 2) -> String {
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let units = Int((Double(value) * Double(scale)).rounded())
        let fraction = String(units % scale)
        return "\(units / scale).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
    }
}
