import RealModule

/// ``CCA`` on the GPU: cuBLAS down-projections, the fused `cca_prologue` kernel, flash attention, cuBLAS
/// output projection.
struct DeviceCCA: DeviceAttentionLayer {
    /// The small float32 tensors of steps 4–8, laid out as `cca_prologue.cu` reads them.
    struct PrologueWeights: Sendable {
        /// conv A `[ct, 2]` and bias `[ct]`; nil without convolutions.
        let depthwiseWeight: DeviceBuffer?, depthwiseBias: DeviceBuffer?
        /// conv B as `[tap, head, in, out]` and bias `[ct]`; nil with fewer than two convolutions.
        let groupedWeight: DeviceBuffer?, groupedBias: DeviceBuffer?
        /// The factor each key head is multiplied by: `temp`, or `exp(temp)` in `exp` mode.
        let keyScale: DeviceBuffer
        let rotary: DeviceRotary
    }

    let config: CCAConfig
    let queryWeight: DeviceTensor, keyWeight: DeviceTensor
    let valueCurrentWeight: DeviceTensor, valueDelayedWeight: DeviceTensor
    let outputWeight: DeviceTensor
    let prologue: PrologueWeights

    init(_ layer: CCA, precision: CUDAPrecision, context: CUDAContext) throws {
        let (config, weights) = (layer.config, layer.weights)
        self.config = config
        func matrix(_ name: String) throws -> DeviceTensor { try context.upload(weights[name]!, precision) }
        func floats(_ name: String) throws -> DeviceBuffer? { try weights[name].map { try context.upload($0.storage) } }
        queryWeight = try matrix("qkv_proj.q_proj.weight")
        keyWeight = try matrix("qkv_proj.k_proj.weight")
        valueCurrentWeight = try matrix("qkv_proj.v_proj_current.weight")
        valueDelayedWeight = try matrix("qkv_proj.v_proj_delayed.weight")
        outputWeight = try matrix("o_proj.weight")
        let temperatures = weights["qk_norm.temp"]!.storage
        prologue = PrologueWeights(
            depthwiseWeight: try floats("qkv_proj.conv_qk_depthwise.weight"),
            depthwiseBias: try floats("qkv_proj.conv_qk_depthwise.bias"),
            groupedWeight: try weights["qkv_proj.conv_qk_grouped.weight"].map {
                try context.upload(Self.groupedTaps($0, config: config))
            },
            groupedBias: try floats("qkv_proj.conv_qk_grouped.bias"),
            keyScale: try context.upload(config.temperature == .exp ? temperatures.map { Float.exp($0) } : temperatures),
            rotary: try DeviceRotary(layer.rotary, context: context))
    }

    /// conv B's weight `[ct, d, 2]` rearranged to `[tap, head, in, out]`, so that the threads of a warp,
    /// one per output channel, read consecutive addresses.
    static func groupedTaps(_ weight: Tensor, config: CCAConfig) -> [Float] {
        let (d, heads) = (config.headDim, config.queryHeads + config.keyValueHeads)
        var taps = [Float](repeating: 0, count: 2 * heads * d * d)
        for tap in 0..<2 {
            for head in 0..<heads {
                for input in 0..<d {
                    for output in 0..<d {
                        taps[((tap * heads + head) * d + input) * d + output] = weight.storage[((head * d + output) * d + input) * 2 + tap]
                    }
                }
            }
        }
        return taps
    }

    /// Steps 2–8: `q` `[B,S,Hq,d]`, `k` and `v` `[B,S,Hkv,d]`, ready for attention.
    func project(_ x: DeviceTensor, context: CUDAContext) throws -> (q: DeviceTensor, k: DeviceTensor, v: DeviceTensor) {
        let (batch, length) = (x.shape[0], x.shape[1])
        let (eq, ek, ct) = (config.queryWidth, config.keyWidth, config.convolutionChannels)
        let latents = try context.empty([batch, length, ct], x.precision)
        try context.linear(x.matrix, queryWeight, into: latents.columns(0..<eq))
        try context.linear(x.matrix, keyWeight, into: latents.columns(eq..<ct))
        let values = try context.empty([batch, length, ek], x.precision)
        try context.linear(x.matrix, valueCurrentWeight, into: values.columns(0..<(ek / 2)))
        let valueDelayed = try context.linear(x, valueDelayedWeight)
        let (q, k) = try context.ccaPrologue(latents: latents, valueDelayed: valueDelayed, values: values,
                                             weights: prologue, config: config)
        return (q, k, values.reshaped([batch, length, config.keyValueHeads, config.headDim]))
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, context: CUDAContext) throws -> DeviceTensor {
        let (q, k, v) = try project(x, context: context)
        let attended = try context.attention(q: q, k: k, v: v, scale: 1 / Float(config.headDim).squareRoot(),
                                             keyValid: keyValid)
        return try context.linear(attended.reshaped([x.shape[0], x.shape[1], config.queryWidth]), outputWeight)
    }
}
