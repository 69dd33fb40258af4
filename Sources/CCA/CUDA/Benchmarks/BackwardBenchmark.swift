/// Training-step latency on the GPU for the report's comparison (bfloat16, E = 2048, d = 128, B = 1,
/// causal): whole layers forward + backward (input and output gradient already on the GPU), and the
/// attention core's backward alone on the latent shapes, timed with CUDA events.
public enum BackwardBenchmark {
    /// The layers compared, as ``PrefillBenchmark/layers()`` has them.
    public static func layers() throws -> [(method: String, layer: any AttentionLayer<Float>, queryHeads: Int, keyValueHeads: Int)] {
        try PrefillBenchmark.layers()
    }

    /// Times, at each length: `<method>` the layer's forward + backward, `core-<method>` the attention
    /// backward alone (delta, the backward kernel, the dq rounding) with its TFLOP/s counted as 2.5 times
    /// the causal forward's `2·S²·Hq·d`, and `peak-mib-<method>` the layer step's peak device memory above
    /// its inputs (MiB, in the milliseconds field); layers whose GPU backward does not exist yet are skipped.
    public static func run(lengths: [Int], repetitions: Int = 20, log: (String) -> Void = { print($0) }) throws
        -> [PrefillBenchmark.Measurement] {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs, kernels for \(context.architecture)")
        var measurements: [PrefillBenchmark.Measurement] = []
        for (method, layer, queryHeads, keyValueHeads) in try layers() {
            let gpu = try CUDALayer(layer)
            let heads = Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: 128, valueDim: 128,
                                        scale: 1 / Double(128).squareRoot())
            for length in lengths {
                let layerTime: (ms: Double, peak: Double)? = try? context.exclusive {
                    let x = try context.upload(Tensor<Float>(randomNormal: [1, length, 2048], seed: 10), .bfloat16)
                    let dy = try context.upload(Tensor<Float>(randomNormal: [1, length, 2048], seed: 11), .bfloat16)
                    let gradients = try gpu.config.zeroGradients(context: context)
                    func step(_ input: DeviceTensor) throws {
                        let (_, backward) = try gpu.implementation.forward(input, keyValid: nil, keep: true, context: context)
                        _ = try backward!(dy, gradients)
                    }
                    let ms = try PrefillBenchmark.median(context, repetitions, [x], step)
                    try context.synchronize()
                    context.allocator.resetPeak()
                    let base = context.allocator.bytesInUse
                    try step(x)
                    try context.synchronize()
                    return (ms, Double(context.allocator.peakBytesInUse - base) / Double(1 << 20))
                }
                if let layerTime {
                    measurements.append(.init(method: method, length: length, causal: true, milliseconds: layerTime.ms))
                    measurements.append(.init(method: "peak-mib-" + method, length: length, causal: true, milliseconds: layerTime.peak))
                }
                let core = try context.exclusive {
                    let q = try context.upload(Tensor<Float>(randomNormal: [1, length, queryHeads, 128], seed: 20), .bfloat16)
                    let k = try context.upload(Tensor<Float>(randomNormal: [1, length, keyValueHeads, 128], seed: 21), .bfloat16)
                    let v = try context.upload(Tensor<Float>(randomNormal: [1, length, keyValueHeads, 128], seed: 22), .bfloat16)
                    let dOut = try context.upload(Tensor<Float>(randomNormal: [1, length, queryHeads, 128], seed: 23), .bfloat16)
                    let (out, lse) = try Attention.forward(q: q, k: k, v: v, heads: heads, keyValid: nil, keepLSE: true, context: context)
                    return try PrefillBenchmark.median(context, repetitions, [dOut]) {
                        _ = try Attention.backward(dOut: $0, q: q, k: k, v: v, out: out, lse: lse!, heads: heads, keyValid: nil,
                                                   context: context)
                    }
                }
                let flops = 2.5 * 2 * Double(length) * Double(length) * Double(queryHeads) * 128
                measurements.append(.init(method: "core-" + method, length: length, causal: true, milliseconds: core,
                                          teraflops: flops / core / 1e9))
                log("\(method) S=\(length): attention backward \(NumberFormatting.fixed(core, 3)) ms "
                    + "(\(NumberFormatting.fixed(flops / core / 1e9, 0)) TFLOP/s)"
                    + (layerTime.map { ", layer forward + backward \(NumberFormatting.fixed($0.ms, 3)) ms, peak \(NumberFormatting.fixed($0.peak, 0)) MiB" } ?? ""))
            }
        }
        return measurements
    }
}
