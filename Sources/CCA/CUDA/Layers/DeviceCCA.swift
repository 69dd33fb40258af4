import RealModule

/// ``CCA`` on the GPU: one cuBLAS projection `x · [Wq; Wk; Wv_current; Wv_delayed]ᵀ`, the value shift
/// (`cca_values`), steps 4–8 (`cca_prologue_mma`, or `cca_prologue` off its path), flash attention,
/// cuBLAS output projection.
struct DeviceCCA: DeviceAttentionLayer {
    /// The small float32 tensors of steps 4–8, laid out as the prologue kernels read them.
    struct PrologueWeights: Sendable {
        /// Whether steps 4–8 run on `cca_prologue_mma.cu` (bfloat16, both convolutions, head and rotary dims
        /// positive multiples of 16, head dim at most 128) rather than `cca_prologue.cu`.
        let tensorCores: Bool
        /// conv A `[ct, 2]` and bias `[ct]`; nil without convolutions.
        let depthwiseWeight: DeviceBuffer?, depthwiseBias: DeviceBuffer?
        /// conv B, nil with fewer than two convolutions: bfloat16 `[head, out, tap·d + in]` for the
        /// tensor cores, else float32 `[tap, head, in, out]`; its bias `[ct]`.
        let groupedWeight: DeviceBuffer?, groupedBias: DeviceBuffer?
        /// The factor each key head is multiplied by: `temp`, or `exp(temp)` in `exp` mode.
        let keyScale: DeviceBuffer
        let rotary: DeviceRotary
    }

    let config: CCAConfig
    /// `Wq`, `Wk`, `Wv_current`, `Wv_delayed`, whose products are the column ranges of `[q0 | k0 | v_current | v_delayed]`.
    let projectionWeights: [DeviceTensor]
    let outputWeight: DeviceTensor
    let prologue: PrologueWeights

    /// The projection weights in the order of their output columns.
    static let projectionNames = ["q_proj", "k_proj", "v_proj_current", "v_proj_delayed"].map { "qkv_proj.\($0).weight" }

    init(config: CCAConfig, weights: DeviceWeights, context: CUDAContext) throws {
        // The kernels attend every earlier key; refusing a window keeps them from giving a wrong answer.
        if let window = config.slidingWindow {
            throw ConfigError.invalidValue(name: "sliding_window", value: "\(window)", expected: "none on the GPU (its attention has no window yet); run on the CPU")
        }
        self.config = config
        let precision = weights.matrixPrecision
        let shapes = config.weightShapes
        func weight(_ name: String, _ precision: CUDAPrecision) throws -> DeviceTensor {
            try weights.weight(name, shape: shapes[name]!, precision: precision)
        }
        projectionWeights = try Self.projectionNames.map { try weight($0, precision) }
        outputWeight = try weight("o_proj.weight", precision)
        // The fused prologue kernels read the small float32 weights in their own layouts, made here from a
        // copy of the weights as they are now.
        var small: [String: Tensor<Float>] = [:]
        for name in shapes.keys where shapes[name]!.count < 2 || name.contains("conv_qk") {
            small[name] = try context.download(try weight(name, .float32))
        }
        let rotary = try config.rope.embedding(headDim: config.headDim)
        func floats(_ name: String) throws -> DeviceBuffer? { try small[name].map { try context.upload($0.storage) } }
        let (d, rotaryDim) = (config.headDim, rotary.rotaryDim)
        let tensorCores = precision == .bfloat16 && config.convolutions == 2 && d % 16 == 0 && d <= 128
            && rotaryDim > 0 && rotaryDim % 16 == 0
        let temperatures = small["qk_norm.temp"]!.storage
        prologue = PrologueWeights(
            tensorCores: tensorCores,
            depthwiseWeight: try floats("qkv_proj.conv_qk_depthwise.weight"),
            depthwiseBias: try floats("qkv_proj.conv_qk_depthwise.bias"),
            groupedWeight: try small["qkv_proj.conv_qk_grouped.weight"].map { weight in
                tensorCores ? try context.upload(Self.stackedTaps(weight, config: config), .bfloat16).buffer
                            : try context.upload(Self.groupedTaps(weight, config: config))
            },
            groupedBias: try floats("qkv_proj.conv_qk_grouped.bias"),
            keyScale: try context.upload(config.temperature == .exp ? temperatures.map { Float.exp($0) } : temperatures),
            rotary: try DeviceRotary(rotary, context: context))
    }

    /// conv B's weight `[ct, d, 2]` rearranged to `[tap, head, in, out]`, so that the threads of a warp,
    /// one per output channel, read consecutive addresses.
    static func groupedTaps(_ weight: Tensor<Float>, config: CCAConfig) -> [Float] {
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

    /// conv B's weight `[ct, d, 2]` as `[head, out, tap·d + in]`: per head, the matrix that multiplies the
    /// rows `[mixed(t − 1) | mixed(t)]`, stored as the column-major B operand of the tensor cores.
    static func stackedTaps(_ weight: Tensor<Float>, config: CCAConfig) throws -> Tensor<Float> {
        let (d, heads) = (config.headDim, config.queryHeads + config.keyValueHeads)
        var taps = [Float](repeating: 0, count: heads * d * 2 * d)
        for row in 0..<(heads * d) {
            for tap in 0..<2 {
                for input in 0..<d { taps[(row * 2 + tap) * d + input] = weight.storage[(row * d + input) * 2 + tap] }
            }
        }
        return try Tensor<Float>(shape: [heads, d, 2 * d], storage: taps)
    }

    /// Steps 2–8: `q` `[B,S,Hq,d]`, `k` and `v` `[B,S,Hkv,d]`, ready for attention.
    func project(_ x: DeviceTensor, context: CUDAContext) throws -> (q: DeviceTensor, k: DeviceTensor, v: DeviceTensor) {
        let projections = try self.projections(x, context: context)
        let v = try context.ccaValues(projections, config: config)
        let (q, k) = try context.ccaPrologue(projections, weights: prologue, config: config)
        return (q, k, v)
    }

    /// `[q0 | k0 | v_current | v_delayed]` `[B, S, ct + ek]`: one product when the four weights lie one after
    /// another in memory (as ``CCAConfig/upload(_:precision:context:)`` places them), else one per weight.
    func projections(_ x: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let widths = projectionWeights.map { $0.shape[0] }
        let total = widths.reduce(0, +)
        let first = projectionWeights[0]
        let adjacent = zip(projectionWeights, projectionWeights.dropFirst()).allSatisfy { previous, next in
            next.buffer.address == previous.buffer.address
                && next.byteOffset == previous.byteOffset + previous.count * previous.precision.byteCount
        }
        if adjacent {
            let stacked = DeviceTensor(shape: [total, config.hiddenSize], precision: first.precision, buffer: first.buffer,
                                       byteOffset: first.byteOffset)
            return try Linear.forward(x, stacked, context: context)
        }
        let projections = try context.empty(Array(x.shape.dropLast()) + [total], x.precision)
        var column = 0
        for (weight, width) in zip(projectionWeights, widths) {
            try Linear.forward(x.matrix, weight, into: projections.columns(column..<(column + width)), context: context)
            column += width
        }
        return projections
    }

    var heads: Attention.Heads {
        Attention.Heads(queryHeads: config.queryHeads, keyValueHeads: config.keyValueHeads, keyDim: config.headDim,
                        valueDim: config.headDim, scale: 1 / Double(config.headDim).squareRoot())
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        guard !keep else { throw CUDAError.unsupported("the CCA backward pass on the GPU") }
        let (q, k, v) = try project(x, context: context)
        let attended = try Attention.forward(q: q, k: k, v: v, heads: heads, keyValid: keyValid, context: context).out
        return (try Linear.forward(attended.reshaped([x.shape[0], x.shape[1], config.queryWidth]), outputWeight, context: context), nil)
    }
}

extension CCAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: DeviceWeights, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceCCA(config: self, weights: weights, context: context)
    }

    /// Uploads as the other kinds do, but with the four projection weights in one allocation, one after
    /// another, so that the forward pass makes them with one product.
    func upload(_ weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> DeviceWeights {
        var uploaded = try weights.filter { !DeviceCCA.projectionNames.contains($0.key) }
            .mapValues { try context.upload($0, DeviceWeights.storagePrecision(of: $0.shape, compute: precision)) }
        let projections = try DeviceCCA.projectionNames.map { name in
            guard let weight = weights[name] else { throw WeightError.missing(name: name, available: weights.keys.sorted()) }
            return weight
        }
        let rows = projections.map { $0.shape[0] }
        let stacked = try context.upload(try Tensor<Float>(shape: [rows.reduce(0, +), hiddenSize],
                                                           storage: projections.flatMap { $0.storage }), precision)
        var offset = 0
        for (name, weight) in zip(DeviceCCA.projectionNames, projections) {
            uploaded[name] = stacked.view(weight.shape, at: offset)
            offset += weight.count
        }
        return uploaded
    }
}
