/// ``DeviceCCA`` continuing sequences through the decode cache: one product for `[q0 | k0 | v_current |
/// v_delayed]`, then `decode_cca_prologue.cu`, which runs steps 3–8 for every new row from its sequence's
/// state and writes k and the value-shifted v straight into the cache (and, for a step with prompt chunks,
/// also side by side for the flash attention kernels: ``DeviceDecodeStep/attend(q:cache:heads:prompt:context:)``),
/// the attention, the output projection, and last the state update. A step of fresh prompts of one length
/// (``DeviceDecodeStep/equalPromptBatch``) runs steps 3–8 as a `[B, S]` prefill instead (`cca_values` and
/// the fused prologue, on the tensor cores where ``DeviceCCA/tensorCores``), then writes k and v to the cache.
struct DeviceCCADecoder: DeviceDecodeLayer {
    let layer: DeviceCCA
    /// The small float32 weights of steps 4–8, with conv B's taps as `[tap, head, in, out]` (the layout of
    /// `cca_prologue.cu`, which the decode kernel shares), made once: a decoding model's weights do not change.
    let weights: DeviceCCA.PrologueWeights
    /// The same for the fused prefill prologue (``DeviceCCA/prologueWeights(context:)``), made once too.
    let prefillWeights: DeviceCCA.PrologueWeights

    /// The decoder of the layer built from `weights` (``DeviceWeights``).
    init(config: CCAConfig, weights: DeviceWeights, context: CUDAContext) throws {
        layer = try DeviceCCA(config: config, weights: weights, context: context)
        let fused = try layer.prologueWeights(context: context)
        let taps = try layer.prologue.convolution.groupedWeight.map {
            try DeviceCCAConvolution.taps($0, headDim: config.headDim, layout: .transposed, precision: .float32, context: context)
        }
        self.weights = DeviceCCA.PrologueWeights(
            tensorCores: false, depthwiseWeight: fused.depthwiseWeight, depthwiseBias: fused.depthwiseBias, groupedWeight: taps,
            groupedBias: fused.groupedBias, keyScale: fused.keyScale, rotary: fused.rotary)
        prefillWeights = fused
    }

    var decodeHeads: Attention.Heads { layer.heads }
    var convolutionState: (channels: Int, valueWidth: Int)? { (layer.config.convolutionChannels, layer.config.keyWidth) }

    func decode(_ x: DeviceTensor, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer, context: CUDAContext) throws
        -> DeviceTensor {
        guard let history = cache.history, let valueHistory = cache.valueHistory else {
            throw CUDAError.unsupported("a CCA layer over a decode cache made without its state slots")
        }
        let config = layer.config
        let (rows, d) = (step.rows, config.headDim)
        guard d <= 1024 else { throw CUDAError.unsupported("CCA head_dim above 1024 (got \(d))") }
        let projections = try layer.projections(x, context: context)
        let stride = projections.shape.last!
        let (q, prompt) = try step.equalPromptBatch.map { batch in
            try prefillPrologue(projections.reshaped([batch, rows / batch, stride]), step: step, cache: cache, context: context)
        } ?? decodePrologue(projections, history: history, valueHistory: valueHistory, step: step, cache: cache, context: context)
        let attended = try step.attend(q: q, cache: cache, heads: layer.heads, prompt: prompt, context: context)
        let y = try Linear.forward(attended.reshaped([rows, config.queryWidth]), layer.outputWeight, context: context)
        // After the prologue, which reads the old state (the stream keeps the order).
        let (ct, half) = (config.convolutionChannels, config.keyWidth / 2)
        let update = try context.kernel("cca_decode_history", in: .decodeCCAPrologue, precision: x.precision)
        try context.launchElementwise(update, count: step.lengths.count * (ct + half),
                                      [projections.address, history.address, valueHistory.address, step.sequenceState.address,
                                       step.sequenceLastRow.address, step.sequenceRows.address, Int32(step.lengths.count),
                                       Int32(stride), Int32(ct), Int32(half)])
        return y
    }

    /// Steps 3–8 of every row from its sequence's state (`decode_cca_prologue.cu`): q `[R, Hq, d]`, k and v into
    /// the cache, and for a step with prompt chunks (and no window) also densely `[R, Hkv, d]` for the flash kernels.
    private func decodePrologue(_ projections: DeviceTensor, history: DeviceTensor, valueHistory: DeviceTensor,
                                step: DeviceDecodeStep, cache: DeviceDecodeCache.Layer, context: CUDAContext) throws
        -> (q: DeviceTensor, prompt: (keys: DeviceTensor, values: DeviceTensor)?) {
        let config = layer.config
        let (rows, d, hq, hkv, stride) = (step.rows, config.headDim, config.queryHeads, config.keyValueHeads, projections.shape.last!)
        let q = try context.empty([rows, hq, d], projections.precision)
        let prompt: (keys: DeviceTensor, values: DeviceTensor)? = step.promptRuns.isEmpty || layer.heads.window != nil ? nil
            : (keys: try context.empty([rows, hkv, d], projections.precision), values: try context.empty([rows, hkv, d], projections.precision))
        let prologue = try context.kernel("cca_decode_prologue", in: .decodeCCAPrologue, precision: projections.precision)
        // Several threads per channel share conv B's input channels: a single-token step has few blocks.
        let parts = max(1, min(8, 1024 / d))
        try context.launch(prologue, grid: (rows, hq + hkv, 1), threads: parts * d, sharedBytes: (3 + 4 * parts) * d * 4,
                           [projections.address, history.address, valueHistory.address, step.rowSequence.address,
                            step.rowState.address, step.rowPosition.address, step.rowOffset.address, step.pageTable.address,
                            weights.depthwiseWeight?.address ?? 0, weights.depthwiseBias?.address ?? 0,
                            weights.groupedWeight?.address ?? 0, weights.groupedBias?.address ?? 0, weights.keyScale.address,
                            weights.rotary.inverseFrequencies.address, q.address, cache.keys.address, cache.values.address,
                            prompt?.keys.address ?? 0, prompt?.values.address ?? 0,
                            Int32(stride), Int32(hq), Int32(hkv), Int32(d), Int32(weights.rotary.dimension),
                            Int32(config.convolutions), Int32(config.qkMean ? 1 : 0), Int32(config.valueShift ? 1 : 0),
                            Int32(step.maxPages)])
        return (q, prompt)
    }

    /// Steps 3–8 of `B` fresh prompts of `S` rows as one prefill, `projections` `[B, S, ct + ek]` (a fresh
    /// sequence's state is zeros, as the prefill pads): q `[R, Hq, d]`, and k and v written to the cache and
    /// returned `[R, Hkv, d]`.
    private func prefillPrologue(_ projections: DeviceTensor, step: DeviceDecodeStep, cache: DeviceDecodeCache.Layer,
                                 context: CUDAContext) throws -> (q: DeviceTensor, prompt: (keys: DeviceTensor, values: DeviceTensor)?) {
        let config = layer.config
        let (rows, d, hq, hkv) = (step.rows, config.headDim, config.queryHeads, config.keyValueHeads)
        let v = try context.ccaValues(projections, config: config).reshaped([rows, hkv, d])
        let (q, k) = try context.ccaPrologue(projections, weights: prefillWeights, config: config)
        let keys = k.reshaped([rows, hkv, d])
        try DecodeAttention.write(keys: keys, values: v, rowSequence: step.rowSequence, rowPosition: step.rowPosition,
                                  pageTable: step.pageTable, maxPages: step.maxPages, keyCache: cache.keys,
                                  valueCache: cache.values, heads: layer.heads, context: context)
        return (q.reshaped([rows, hq, d]), (keys, v))
    }
}
