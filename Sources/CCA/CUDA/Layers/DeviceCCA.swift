/// ``CCA`` on the GPU: one cuBLAS projection `x · [Wq; Wk; Wv_current; Wv_delayed]ᵀ`, the value shift
/// (`cca_values`), steps 4–8, flash attention, cuBLAS output projection.
///
/// Steps 4–8 run on the fused `cca_prologue_mma` (or `cca_prologue` off its path) for inference, which
/// keeps nothing, and on ``DeviceCCAPrologue`` when the forward pass keeps what its backward pass reads.
/// Both read the layer's ``DeviceWeights`` as they are at each pass (the fused kernels' own layouts of
/// conv B's taps and the key scales are remade from them each time, a few hundred kilobytes), so an
/// optimizer step that updates the weights in place is what the next pass sees.
struct DeviceCCA: DeviceAttentionLayer {
    /// The small float32 tensors of steps 4–8 as the fused prologue kernels read them, made for one pass.
    struct PrologueWeights: Sendable {
        /// Whether steps 4–8 run on `cca_prologue_mma.cu` (bfloat16, both convolutions, head and rotary dims
        /// positive multiples of 16, head dim at most 128) rather than `cca_prologue.cu`.
        let tensorCores: Bool
        /// conv A `[ct, 1, 2]` and bias `[ct]`, the layer's weights themselves; nil without convolutions.
        let depthwiseWeight: DeviceTensor?, depthwiseBias: DeviceTensor?
        /// conv B's taps, nil with fewer than two convolutions: bfloat16 `[head, out, tap·d + in]` for the
        /// tensor cores, else float32 `[tap, head, in, out]`; its bias `[ct]` (the layer's weight).
        let groupedWeight: DeviceTensor?, groupedBias: DeviceTensor?
        /// The factor each key head is multiplied by: `temp` (the weight itself), or `exp(temp)` in `exp` mode.
        let keyScale: DeviceTensor
        let rotary: DeviceRotary
    }

    let config: CCAConfig
    /// `Wq`, `Wk`, `Wv_current`, `Wv_delayed`, whose products are the column ranges of `[q0 | k0 | v_current | v_delayed]`.
    let projectionWeights: [DeviceTensor]
    let outputWeight: DeviceTensor
    /// Steps 4–8 for training, reading the convolutions' weights and the temperature in place.
    let prologue: DeviceCCAPrologue
    /// Whether inference runs steps 4–8 on the tensor cores (see ``PrologueWeights/tensorCores``).
    let tensorCores: Bool

    /// The projection weights in the order of their output columns.
    static let projectionNames = ["q_proj", "k_proj", "v_proj_current", "v_proj_delayed"].map { "qkv_proj.\($0).weight" }

    init(config: CCAConfig, weights: DeviceWeights, context: CUDAContext) throws {
        self.config = config
        let precision = weights.matrixPrecision
        func matrix(_ name: String) throws -> DeviceTensor {
            try weights.weight(name, shape: config.weightShapes[name]!, precision: precision)
        }
        projectionWeights = try Self.projectionNames.map(matrix)
        outputWeight = try matrix("o_proj.weight")
        prologue = try DeviceCCAPrologue(config: config, weights: weights, context: context)
        let (d, rotaryDim) = (config.headDim, prologue.rotary.dimension)
        tensorCores = precision == .bfloat16 && config.convolutions == 2 && d % 16 == 0 && d <= 128
            && rotaryDim > 0 && rotaryDim % 16 == 0
    }

    /// The fused prologue's weights from the layer's weights as they are now.
    func prologueWeights(context: CUDAContext) throws -> PrologueWeights {
        let convolution = prologue.convolution, temperature = prologue.temperature
        var keyScale = temperature
        if config.temperature == .exp {
            keyScale = try context.empty(temperature.shape, .float32)
            let kernel = try context.kernel("key_scales", in: .ccaPrologueHeads, precision: .float32)
            try context.launchElementwise(kernel, count: temperature.count,
                                          [temperature.address, keyScale.address, Int32(temperature.count), Int32(1)])
        }
        return PrologueWeights(
            tensorCores: tensorCores, depthwiseWeight: convolution.depthwiseWeight, depthwiseBias: convolution.depthwiseBias,
            groupedWeight: try convolution.groupedWeight.map { weight in
                try DeviceCCAConvolution.taps(weight, headDim: config.headDim, layout: tensorCores ? .stacked : .transposed,
                                              precision: tensorCores ? .bfloat16 : .float32, context: context)
            },
            groupedBias: convolution.groupedBias, keyScale: keyScale, rotary: prologue.rotary)
    }

    /// Steps 2–8 for inference: `q` `[B,S,Hq,d]`, `k` and `v` `[B,S,Hkv,d]`, ready for attention.
    func project(_ x: DeviceTensor, context: CUDAContext) throws -> (q: DeviceTensor, k: DeviceTensor, v: DeviceTensor) {
        let projections = try self.projections(x, context: context)
        let v = try context.ccaValues(projections, config: config)
        let (q, k) = try context.ccaPrologue(projections, weights: try prologueWeights(context: context), config: config)
        return (q, k, v)
    }

    /// The output columns of each projection weight, in order.
    var projectionColumns: [Range<Int>] {
        var start = 0
        return projectionWeights.map { weight in
            defer { start += weight.shape[0] }
            return start..<(start + weight.shape[0])
        }
    }

    /// `[q0 | k0 | v_current | v_delayed]` `[B, S, ct + ek]`: one product when the four weights are
    /// ``DeviceTensor/stacked(_:)``, else one per weight.
    func projections(_ x: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        if let stacked = DeviceTensor.stacked(projectionWeights) { return try Linear.forward(x, stacked, context: context) }
        let projections = try context.empty(Array(x.shape.dropLast()) + [config.convolutionChannels + config.keyWidth], x.precision)
        for (weight, columns) in zip(projectionWeights, projectionColumns) {
            try Linear.forward(x.matrix, weight, into: projections.columns(columns), context: context)
        }
        return projections
    }

    /// With the layer's sliding window: the decode attention takes it; the flash kernels refuse it
    /// (``Attention/Heads/checkForDevice(positions:)``), so a sliding layer trains on the CPU only.
    var heads: Attention.Heads {
        Attention.Heads(queryHeads: config.queryHeads, keyValueHeads: config.keyValueHeads, keyDim: config.headDim,
                        valueDim: config.headDim, scale: 1 / Double(config.headDim).squareRoot(), window: config.slidingWindow)
    }

    /// With `keep`, or with `positions` (packed documents, which the fused inference prologue does not
    /// know), steps 4–8 run on ``DeviceCCAPrologue``; with `keep` the attention keeps its log-sum-exp. The
    /// backward pass: the output projection's, ``Attention/backward(dOut:q:k:v:out:lse:heads:keyValid:positions:context:)``,
    /// the prologue's into the `[q0 | k0]` columns of the projections' gradient and the value shift's into
    /// its value columns, then the four projection weights' (one product each for `dx` and the weights'
    /// gradient when weights and gradients are ``DeviceTensor/stacked(_:)``). `dx`'s padded rows are not zero (the
    /// convolutions carry later rows' gradient into them): the caller zeroes them, as it does `y`'s.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, positions: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        let (batch, length, ct, ek) = (x.shape[0], x.shape[1], config.convolutionChannels, config.keyWidth)
        let projections = try self.projections(x, context: context)
        let v = try context.ccaValues(projections, config: config, positions: positions)
        let q: DeviceTensor, k: DeviceTensor, saved: DeviceCCAPrologue.Saved?
        if keep || positions != nil {
            (q, k, saved) = try prologue.forward(projections.columns(0..<ct), batch: batch, length: length, positions: positions,
                                                 context: context)
        } else {
            ((q, k), saved) = (try context.ccaPrologue(projections, weights: try prologueWeights(context: context), config: config), nil)
        }
        let (y, attentionBackward) = try attendAndProject(q: q, k: k, v: v, heads: heads, keyValid: keyValid, positions: positions,
                                                          outputWeight: outputWeight, keep: keep, context: context)
        guard let attentionBackward, let saved else { return (y, nil) }
        return (y, { dy, gradients in
            let (dq, dk, dv) = try attentionBackward(dy, gradients)
            let dProjections = try context.empty(projections.shape, x.precision)
            try prologue.backward(dq: dq, dk: dk, saved: saved, into: dProjections.columns(0..<ct), gradients: gradients,
                                  context: context)
            try ValueShift.backward(dv.reshaped([batch * length, ek]), sequenceLength: length, positions: positions,
                                    shifted: config.valueShift,
                                    into: dProjections.columns(ct..<(ct + ek)), context: context)
            let dx = try context.empty(x.shape, x.precision)
            let projectionGradients = try zip(Self.projectionNames, projectionWeights).map { name, weight in
                try gradients.weight(name, shape: weight.shape, precision: .float32)
            }
            if let weight = DeviceTensor.stacked(projectionWeights), let gradient = DeviceTensor.stacked(projectionGradients) {
                try Linear.backward(dProjections.matrix, x: x.matrix, weight: weight, dx: dx.matrix, accumulate: false,
                                    dWeight: gradient, context: context)
            } else {
                for (index, (weight, (gradient, columns))) in zip(projectionWeights, zip(projectionGradients, projectionColumns)).enumerated() {
                    try Linear.backward(dProjections.columns(columns), x: x.matrix, weight: weight, dx: dx.matrix,
                                        accumulate: index > 0, dWeight: gradient, context: context)
                }
            }
            return dx
        })
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
            .mapValues { try context.upload($0, DeviceWeights.storage(of: $0.shape, matrices: precision)) }
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
