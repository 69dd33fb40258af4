/// Prefill latency on the GPU for the report's comparison (bfloat16, E = 2048, d = 128, B = 1): whole
/// layers (projections, prologue, attention, output projection; input already on the GPU) and the
/// attention core alone on the latent shapes, causal and not, timed with CUDA events.
public enum PrefillBenchmark {
    /// One timing: `method` is `mha`, `cca` or `ccgqa` for layers and `core-<method>` for attention alone.
    public struct Measurement: Sendable {
        public var method: String
        public var length: Int
        public var causal: Bool
        /// Median milliseconds.
        public var milliseconds: Double
        /// For the attention core: FLOPs `4·S²·Hq·d` (halved when causal) per second, in TFLOP/s.
        public var teraflops: Double?

        public init(method: String, length: Int, causal: Bool, milliseconds: Double, teraflops: Double? = nil) {
            (self.method, self.length, self.causal, self.milliseconds, self.teraflops) = (method, length, causal, milliseconds, teraflops)
        }
    }

    /// The three layers compared: MHA with 16 heads (full RoPE, theta 1e4, as the PyTorch anchor), CCA
    /// with C = 4 (Hq = Hkv = 4) and CCGQA with Cq = 2, Ckv = 8 (Hq = 8, Hkv = 2, the ZAYA1 shape).
    public static func layers() throws -> [(method: String, layer: any AttentionLayer<Float>, queryHeads: Int, keyValueHeads: Int)] {
        [
            ("mha", try GQA<Float>(config: .mha(hiddenSize: 2048, heads: 16, rope: RoPEConfig(theta: 10_000, fraction: 1)), seed: 1), 16, 16),
            ("cca", try CCA<Float>(config: CCAConfig(hiddenSize: 2048, queryHeads: 4, keyValueHeads: 4), seed: 2), 4, 4),
            ("ccgqa", try CCA<Float>(config: CCAConfig(), seed: 3), 8, 2),
        ]
    }

    /// Times every layer (causal) and attention core (causal and not) at each length, `repetitions` runs
    /// after two warm-ups.
    public static func run(lengths: [Int], repetitions: Int = 20, log: (String) -> Void = { print($0) }) throws -> [Measurement] {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs, kernels for \(context.architecture)")
        var measurements: [Measurement] = []
        for (method, layer, queryHeads, keyValueHeads) in try layers() {
            let gpu = try CUDALayer(layer)
            for length in lengths {
                let milliseconds = try context.exclusive {
                    let inputs = try (0..<2).map { try context.upload(Tensor<Float>(randomNormal: [1, length, 2048], seed: UInt64(10 + $0)), .bfloat16) }
                    return try median(context, repetitions, inputs) { _ = try gpu.implementation.forward($0, keyValid: nil, keep: false, context: context) }
                }
                measurements.append(Measurement(method: method, length: length, causal: true, milliseconds: milliseconds))
                for causal in [true, false] {
                    let core = try context.exclusive {
                        let q = try context.upload(Tensor<Float>(randomNormal: [1, length, queryHeads, 128], seed: 20), .bfloat16)
                        let k = try context.upload(Tensor<Float>(randomNormal: [1, length, keyValueHeads, 128], seed: 21), .bfloat16)
                        let v = try context.upload(Tensor<Float>(randomNormal: [1, length, keyValueHeads, 128], seed: 22), .bfloat16)
                        return try median(context, repetitions, [q]) {
                            _ = try Attention.forward(q: $0, k: k, v: v, heads: Attention.Heads(
                                queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: 128, valueDim: 128,
                                scale: 1 / Double(128).squareRoot(), causal: causal), keyValid: nil, context: context)
                        }
                    }
                    let flops = 4 * Double(length) * Double(length) * Double(queryHeads) * 128 / (causal ? 2 : 1)
                    measurements.append(Measurement(method: "core-" + method, length: length, causal: causal, milliseconds: core,
                                                    teraflops: flops / core / 1e9))
                    log("\(method) S=\(length) \(causal ? "causal" : "full  "): attention core \(NumberFormatting.fixed(core, 3)) ms "
                        + "(\(NumberFormatting.fixed(flops / core / 1e9, 0)) TFLOP/s)"
                        + (causal ? ", layer \(NumberFormatting.fixed(milliseconds, 3)) ms" : ""))
                }
            }
        }
        return measurements
    }

    /// Median of `repetitions` event-timed runs, cycling through `inputs`, after two warm-up runs.
    static func median(_ context: CUDAContext, _ repetitions: Int, _ inputs: [DeviceTensor],
                               _ body: (DeviceTensor) throws -> Void) throws -> Double {
        for input in inputs { try body(input) }
        let times = try (0..<max(1, repetitions)).map { index in
            Double(try context.elapsedMilliseconds { try body(inputs[index % inputs.count]) })
        }.sorted()
        return times[times.count / 2]
    }

    /// Anchor rows `method,seq,causal,ms,tflops` as scripts/prefill_anchors.py writes them; `source` names
    /// the file in errors.
    public static func anchors(csv text: String, source: String) throws -> [Measurement] {
        // Python's csv module ends rows with \r\n, one Character in Swift: split on any newline.
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        return try lines.dropFirst().map { line -> Measurement in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 4, let length = Int(fields[1]), let milliseconds = Double(fields[3]) else {
                throw FileIOError(path: source, operation: "read an anchor row", reason: "'\(line)' is not method,seq,causal,ms,tflops")
            }
            return Measurement(method: fields[0], length: length, causal: fields[2] == "True", milliseconds: milliseconds,
                               teraflops: fields.count > 4 ? Double(fields[4]) : nil)
        }
    }
}
