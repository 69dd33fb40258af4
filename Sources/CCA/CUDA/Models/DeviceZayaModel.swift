/// A ``ZayaModel`` resident on the GPU for inference: the embedding table, every layer's experts and an
/// untied head uploaded in the storage precision straight from their memory-mapped files (bf16 files into
/// bfloat16 byte for byte: no float32 copy on the host, so ZAYA1-8B uploads in seconds), the small weights
/// (attention, norms, scalings, routers) from the CPU model's float32 copies.
///
/// Its forward pass runs the new rows of a ``DeviceDecodeStep`` through every ``DeviceZayaLayer`` and the
/// paged decode cache, on a float32 residual stream as transformers keeps it: a prompt is a step of many
/// rows per sequence, decoding a step of one. The logits come out for each sequence's last row (decoding) or
/// for every row (``forward(step:cache:allRows:context:)`` with `allRows`, for `cca logits`).
struct DeviceZayaModel: DeviceDecodingModel {
    let config: ZayaConfig
    let precision: CUDAPrecision
    let embedding: DeviceTensor, inputScale: DeviceTensor, inputBias: DeviceTensor
    let layers: [DeviceZayaLayer]
    let finalNorm: DeviceTensor, head: DeviceTensor, headBias: DeviceTensor?

    /// Uploads `model`.
    /// - Throws: ``CUDAError`` from the device.
    init(_ model: ZayaModel, precision: CUDAPrecision, context: CUDAContext) throws {
        (config, self.precision) = (model.config, precision)
        embedding = try context.upload(model.embedding, precision)
        inputScale = try context.upload(model.inputScale, .float32)
        inputBias = try context.upload(model.inputBias, .float32)
        layers = try model.layers.map { try DeviceZayaLayer($0, precision: precision, context: context) }
        finalNorm = try context.upload(model.finalNorm, .float32)
        head = model.config.tieWordEmbeddings ? embedding : try context.upload(model.head, precision)
        headBias = try model.headBias.map { try context.upload($0, .float32) }
    }

    var vocabSize: Int { config.vocabSize }

    func forward(step: inout DeviceDecodeStep, cache: DeviceDecodeCache, context: CUDAContext) throws -> DeviceTensor {
        try forward(step: &step, cache: cache, allRows: false, context: context)
    }

    /// Logits `[rows, vocab]` (in the storage precision) for the step's tokens: after each sequence's last
    /// row, or with `allRows` after every row.
    func forward(step: inout DeviceDecodeStep, cache: DeviceDecodeCache, allRows: Bool, context: CUDAContext) throws
        -> DeviceTensor {
        let width = config.hiddenSize
        let embedded = try Embedding.forward(ids: step.tokens, count: step.rows, table: embedding, context: context)
        let stream = try context.empty([step.rows, width], .float32)
        let scale = try context.kernel("zaya_input_scale", in: .zayaStream, precision: precision)
        try context.launchElementwise(scale, count: stream.count, [embedded.address, inputBias.address, inputScale.address,
                                                                   stream.address, Int64(step.rows), Int32(width)])
        var (routerState, layerInput): (DeviceTensor?, DeviceTensor?) = (nil, nil)
        for (index, (layer, layerCache)) in zip(layers, cache.layers).enumerated() {
            let next = index + 1 < layers.count ? layers[index + 1] : nil
            (routerState, layerInput) = try layer.decode(stream, normed: layerInput, routerState: routerState,
                                                     nextNorm: next.map { ($0.inputNorm, $0.epsilon) }, step: &step,
                                                     cache: layerCache, context: context)
        }
        // Only the rows whose logits are wanted go through the final norm and the head (a row gather).
        let wanted = allRows ? stream : try Embedding.forward(ids: step.sequenceLastRow, count: step.lengths.count, table: stream,
                                                              context: context)
        let normed = try ResidualScaling.merge(nil, scaling: nil, into: wanted, norm: (finalNorm, Float(config.rmsNormEpsilon)),
                                               precision: precision, context: context).y!
        let logits = try Linear.forward(normed, head, context: context)
        if let headBias {
            let add = try context.kernel("zaya_add_bias", in: .zayaStream, precision: precision)
            try context.launchElementwise(add, count: logits.count, [logits.address, headBias.address, Int64(logits.count / vocabSize),
                                                                     Int32(vocabSize)])
        }
        return logits
    }

    /// The decode cache for this model: `pageCount` pages per layer and `stateSlots` sequences.
    func makeCache(pageCount: Int, stateSlots: Int, context: CUDAContext) throws -> DeviceDecodeCache {
        try DeviceDecodeCache(shapes: layers.map { ($0.attention.decodeHeads, $0.attention.convolutionState) },
                              pageCount: pageCount, stateSlots: stateSlots, precision: precision, context: context)
    }
}
