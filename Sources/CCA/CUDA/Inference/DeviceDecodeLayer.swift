/// A GPU attention layer that continues sequences through the paged decode cache: the new rows of a step
/// (``DeviceDecodeStep``) in, their outputs out, the cache and state advanced.
protocol DeviceDecodeLayer: Sendable {
    /// The heads of its attention over the cache (what each cached token holds).
    var decodeHeads: Attention.Heads { get }
    /// For CCA, the widths of its per-sequence state: `ct` latent channels and `ek` value channels.
    var convolutionState: (channels: Int, valueWidth: Int)? { get }
    /// `x` `[R, E]` (the step's rows) → `y` `[R, E]`, writing the new rows' keys and values into `cache` and
    /// advancing the sequences' state slots.
    func decode(_ x: DeviceTensor, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer, context: CUDAContext) throws
        -> DeviceTensor
}

extension DeviceGQA: DeviceDecodeLayer {
    var decodeHeads: Attention.Heads { heads }
    var convolutionState: (channels: Int, valueWidth: Int)? { nil }

    func decode(_ x: DeviceTensor, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer, context: CUDAContext) throws
        -> DeviceTensor {
        let (d, hq, hkv) = (config.headDim, config.queryHeads, config.keyValueHeads)
        let q = try Linear.forward(x, queryWeight, context: context), k = try Linear.forward(x, keyWeight, context: context)
        let v = try Linear.forward(x, valueWeight, context: context)
        try rotary.forward(q.matrix, heads: hq, headStride: d, positions: step.rowPosition, context: context)
        try rotary.forward(k.matrix, heads: hkv, headStride: d, positions: step.rowPosition, context: context)
        try DecodeAttention.write(keys: k, values: v, rowSequence: step.rowSequence, rowPosition: step.rowPosition,
                                  pageTable: step.pageTable, maxPages: step.maxPages, keyCache: cache.keys,
                                  valueCache: cache.values, heads: heads, context: context)
        let attended = try step.attend(q: q.reshaped([step.rows, hq, d]), cache: cache, heads: heads, prompt: (k, v),
                                       context: context)
        return try Linear.forward(attended.reshaped([step.rows, hq * d]), outputWeight, context: context)
    }
}

extension DeviceMLA: DeviceDecodeLayer {
    var decodeHeads: Attention.Heads {
        let c = config
        return Attention.Heads(queryHeads: c.heads, keyValueHeads: c.heads, keyDim: c.noPEHeadDim + c.ropeHeadDim,
                               valueDim: c.valueHeadDim, scale: 1 / Double(c.noPEHeadDim + c.ropeHeadDim).squareRoot())
    }
    var convolutionState: (channels: Int, valueWidth: Int)? { nil }

    func decode(_ x: DeviceTensor, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer, context: CUDAContext) throws
        -> DeviceTensor {
        let c = config
        let (heads, dn, dr, dv, dc) = (c.heads, c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim, c.keyValueRank)
        let compressedQuery = try RMSNorm.forward(try Linear.forward(x, queryDown, context: context).matrix, weight: queryNorm,
                                                  epsilon: c.normEpsilon, context: context).y
        let q = try Linear.forward(compressedQuery, queryUp, context: context)
        try rotary.forward(q.matrix, heads: heads, headStride: dn + dr, offset: dn, positions: step.rowPosition, context: context)
        let keyValueInput = try Linear.forward(x, keyValueDown, context: context)
        try rotary.forward(keyValueInput.matrix, heads: 1, headStride: dc + dr, offset: dc, positions: step.rowPosition,
                           context: context)
        let compressedKeyValue = try RMSNorm.forward(keyValueInput.columns(0..<dc), weight: keyValueNorm,
                                                     epsilon: c.normEpsilon, context: context).y
        let (k, v) = try context.mlaSplit(keyValue: try Linear.forward(compressedKeyValue, keyValueUp, context: context),
                                          ropeKey: keyValueInput.columns(dc..<(dc + dr)), heads: heads, noPEDim: dn, valueDim: dv)
        let attentionHeads = decodeHeads
        try DecodeAttention.write(keys: k, values: v, rowSequence: step.rowSequence, rowPosition: step.rowPosition,
                                  pageTable: step.pageTable, maxPages: step.maxPages, keyCache: cache.keys,
                                  valueCache: cache.values, heads: attentionHeads, context: context)
        let attended = try step.attend(q: q.reshaped([step.rows, heads, dn + dr]), cache: cache, heads: attentionHeads,
                                       prompt: (k, v), context: context)
        return try Linear.forward(attended.reshaped([step.rows, heads * dv]), outputWeight, context: context)
    }
}
