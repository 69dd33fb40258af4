/// Training-step latency on the GPU for the report's comparison (bfloat16, E = 2048, B = 1, causal): whole
/// layers forward + backward (input and output gradient already on the GPU), and the attention core's
/// backward alone on each layer's attention shape, timed with CUDA events.
public enum BackwardBenchmark {
    /// One layer compared, with its attention's shape.
    public struct Layer {
        public let method: String
        public let layer: any AttentionLayer<Float>
        public let heads: Attention.Heads
    }

    /// The layers of ``PrefillBenchmark/layers()`` (MHA, CCA, CCGQA; head dim 128), and an MLA layer of
    /// DeepSeek-V2's head shape (16 heads, query/key head dim 128 + 64, value head dim 128, ranks 1536 and 512).
    public static func layers() throws -> [Layer] {
        let scale = 1 / Double(128).squareRoot()
        let mla = MLAConfig(hiddenSize: 2048, heads: 16, queryRank: 1536, keyValueRank: 512, noPEHeadDim: 128, ropeHeadDim: 64,
                            valueHeadDim: 128)
        return try PrefillBenchmark.layers().map { method, layer, queryHeads, keyValueHeads in
            Layer(method: method, layer: layer, heads: Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads,
                                                                       keyDim: 128, valueDim: 128, scale: scale))
        } + [Layer(method: "mla", layer: try MLA<Float>(config: mla, seed: 4),
                   heads: Attention.Heads(queryHeads: 16, keyValueHeads: 16, keyDim: 192, valueDim: 128, scale: 1 / Double(192).squareRoot()))]
    }

    /// Times, at each length: `<method>` the layer's forward + backward, `core-<method>` the attention
    /// backward alone (delta, the backward kernel, the dq rounding) with its TFLOP/s counted as 2.5 times
    /// the causal forward's `S²·Hq·(dk + dv)`, and `peak-mib-<method>` the layer step's peak device memory
    /// above its inputs (MiB, in the milliseconds field).
    public static func run(lengths: [Int], repetitions: Int = 20, log: (String) -> Void = { print($0) }) throws
        -> [PrefillBenchmark.Measurement] {
        let context = try CUDAContext.shared()
        log("device: \(context.deviceName), \(context.multiprocessorCount) SMs, kernels for \(context.architecture)")
        var measurements: [PrefillBenchmark.Measurement] = []
        for layer in try layers() {
            let (method, heads) = (layer.method, layer.heads)
            let gpu = try CUDALayer(layer.layer)
            for length in lengths {
                let layerTime: (ms: Double, peak: Double) = try context.exclusive {
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
                measurements.append(.init(method: method, length: length, causal: true, milliseconds: layerTime.ms))
                measurements.append(.init(method: "peak-mib-" + method, length: length, causal: true, milliseconds: layerTime.peak))
                let core = try context.exclusive {
                    let (hq, hkv, dk, dv) = (heads.queryHeads, heads.keyValueHeads, heads.keyDim, heads.valueDim)
                    let q = try context.upload(Tensor<Float>(randomNormal: [1, length, hq, dk], seed: 20), .bfloat16)
                    let k = try context.upload(Tensor<Float>(randomNormal: [1, length, hkv, dk], seed: 21), .bfloat16)
                    let v = try context.upload(Tensor<Float>(randomNormal: [1, length, hkv, dv], seed: 22), .bfloat16)
                    let dOut = try context.upload(Tensor<Float>(randomNormal: [1, length, hq, dv], seed: 23), .bfloat16)
                    let (out, lse) = try Attention.forward(q: q, k: k, v: v, heads: heads, keyValid: nil, keepLSE: true, context: context)
                    return try PrefillBenchmark.median(context, repetitions, [dOut]) {
                        _ = try Attention.backward(dOut: $0, q: q, k: k, v: v, out: out, lse: lse!, heads: heads, keyValid: nil,
                                                   context: context)
                    }
                }
                let flops = 2.5 * Double(length) * Double(length) * Double(heads.queryHeads) * Double(heads.keyDim + heads.valueDim)
                measurements.append(.init(method: "core-" + method, length: length, causal: true, milliseconds: core,
                                          teraflops: flops / core / 1e9))
                log("\(method) S=\(length): attention backward \(NumberFormatting.fixed(core, 3)) ms "
                    + "(\(NumberFormatting.fixed(flops / core / 1e9, 0)) TFLOP/s)"
                    + ", layer forward + backward \(NumberFormatting.fixed(layerTime.ms, 3)) ms, peak \(NumberFormatting.fixed(layerTime.peak, 0)) MiB")
            }
        }
        return measurements
    }
}
