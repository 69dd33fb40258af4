/// ``LanguageModel`` resident on the GPU for training: its parameters in one ``DeviceParameters`` (a compute
/// copy in the run's precision read by the products, float32 master weights, gradients and AdamW moments),
/// the token embedding, the ``DeviceDecoderBlock``s, the final RMSNorm and the tied or untied head, with a
/// cross-entropy over chunks of rows so that the `[tokens, vocab]` logits never exist at once.
///
/// ``queueLoss(_:backward:context:)`` queues a forward pass and, asked to, the backward pass of the mean
/// loss, which adds every parameter's gradient into the gradient buffer; nothing in it waits for the GPU.
struct DeviceLanguageModel: Sendable {
    let config: LanguageModelConfig
    let parameters: DeviceParameters
    let blocks: [DeviceDecoderBlock]
    let embedding: DeviceTensor, head: DeviceTensor, finalNorm: DeviceTensor
    let embeddingGradient: DeviceTensor, headGradient: DeviceTensor, finalNormGradient: DeviceTensor

    /// Elements of the logits of one chunk of rows at most: 64 Mi (128 MiB of bfloat16) unless a check
    /// asks for smaller chunks to reach the chunk boundaries.
    var chunkElements = 1 << 26

    /// Uploads `parameters` (those of ``LanguageModelConfig/parameterShapes``) with their compute copy in
    /// `precision`.
    /// - Throws: ``WeightError`` for a missing or mis-shaped parameter, ``CUDAError`` from the device.
    init(config: LanguageModelConfig, parameters: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws {
        try config.validate()
        let checked = try WeightDictionary(parameters).take(config.parameterShapes)
        self.config = config
        let buffers = try DeviceParameters(checked, precision: precision, context: context)
        self.parameters = buffers
        let (weights, gradients) = try (Self.weights(buffers), buffers.views(of: .gradients))
        blocks = try (0..<config.layers).map { layer in
            let prefix = "layers.\(layer)."
            return try DeviceDecoderBlock(config: config, weights: weights.under(prefix), gradients: gradients.under(prefix),
                                          context: context)
        }
        let headName = config.tiedEmbeddings ? "embed_tokens.weight" : "lm_head.weight"
        (embedding, head, finalNorm) = (weights["embed_tokens.weight"]!, weights[headName]!, weights["norm.weight"]!)
        (embeddingGradient, headGradient) = (gradients["embed_tokens.weight"]!, gradients[headName]!)
        finalNormGradient = gradients["norm.weight"]!
    }

    /// Every parameter as the layers read it: matrices from the compute buffer, everything else (norms,
    /// convolution taps and biases, temperatures, which kernels read as float32) from the master weights.
    static func weights(_ parameters: DeviceParameters) throws -> DeviceWeights {
        var weights: DeviceWeights = [:]
        for segment in parameters.segments {
            weights[segment.name] = try parameters.view(segment.name, in: segment.shape.count == 2 ? .compute : .master)
        }
        return weights
    }

    /// Rows of one chunk of the cross-entropy: as many as keep its logits within `elements`, in multiples
    /// of 128 (the products' tiles) when there are that many, and never more than `rows`.
    static func chunkRows(rows: Int, vocab: Int, elements: Int) -> Int {
        let fitting = max(1, elements / max(1, vocab))
        let tiled = fitting >= 128 ? fitting / 128 * 128 : fitting
        return max(1, min(rows, tiled))
    }

    /// The batch's rows as `[B, S]`: `B` sequences when every length is the same; otherwise (a packed corpus
    /// whose windows are cut at document boundaries) one sequence of all the tokens, with each token's
    /// position within its piece, so that attention, RoPE, and CCA's convolutions and value shift restart at
    /// every piece as on the CPU.
    /// - Throws: ``ShapeError`` when the batch is empty, a length is not positive, or the tokens do not fill
    ///   the lengths (or exceed what int32 positions count).
    static func shape(of batch: TrainingBatch) throws -> (batch: Int, length: Int, positions: [Int32]?) {
        guard let length = batch.lengths.first, batch.lengths.allSatisfy({ $0 > 0 }) else {
            throw ShapeError.mismatch(name: "sequence lengths", expected: [1], actual: batch.lengths.isEmpty ? [0] : batch.lengths)
        }
        let rows = SequenceLayout.total(batch.lengths) ?? -1
        guard rows <= Int(Int32.max), batch.inputs.count == rows, batch.targets.count == rows else {
            throw ShapeError.mismatch(name: "tokens", expected: [rows], actual: [batch.inputs.count])
        }
        guard batch.lengths.contains(where: { $0 != length }) else { return (batch.lengths.count, length, nil) }
        return (1, rows, batch.lengths.flatMap { (0..<Int32($0)) })
    }

    /// Queues the forward pass of `batch` and its per-row losses (float32 `[rows]`: 0 where the target is
    /// ``CrossEntropy/ignored``); with `backward`, also the backward pass of their mean, which adds every
    /// parameter's gradient into ``DeviceParameters/Buffer/gradients``. Activations are released as the
    /// backward pass consumes them. Returns the losses and the number of rows that count.
    func queueLoss(_ batch: TrainingBatch, backward: Bool, context: CUDAContext) throws -> (losses: DeviceTensor, countedRows: Int) {
        let (sequences, length, positionList) = try Self.shape(of: batch)
        // Uploaded once for every layer of the step.
        let positions = try positionList.map { try context.upload($0) }
        let (rows, width, vocab) = (sequences * length, config.hiddenSize, config.vocabSize)
        let countedRows = batch.targets.count(where: { $0 != CrossEntropy.ignored })
        let embedded = try Embedding.forward(batch.inputs, table: embedding, context: context).reshaped([sequences, length, width])
        var stream = DeviceResidualStream(base: embedded, pending: nil)
        var backwards: [DeviceDecoderBlock.Backward] = []
        for block in blocks {
            let (y, blockBackward) = try block.forward(stream, positions: positions, keep: backward, context: context)
            stream = y
            if let blockBackward { backwards.append(blockBackward) }
        }
        let (x, normed, finalInverse) = try stream.normalized(weight: finalNorm, epsilon: config.normEpsilon, context: context)
        let losses = try context.empty([rows], .float32)
        let dNormed = backward ? try context.empty([rows, width], x.precision) : nil
        let chunk = Self.chunkRows(rows: rows, vocab: vocab, elements: chunkElements)
        for start in stride(from: 0, to: rows, by: chunk) {
            let count = min(chunk, rows - start)
            let hidden = normed.view([count, width], at: start * width)
            let logits = try Linear.forward(hidden, head, context: context)
            let (targets, chunkLosses) = (Array(batch.targets[start..<(start + count)]), losses.view([count], at: start))
            guard let dNormed else {
                try CrossEntropy.forward(logits: logits, targets: targets, into: chunkLosses, context: context)
                continue
            }
            // The logits become their gradient in place; the head's gradient and dHidden follow from them.
            try CrossEntropy.backward(logits: logits, targets: targets, countedRows: countedRows, into: chunkLosses, context: context)
            try Linear.backward(logits.matrix, x: hidden.matrix, weight: head, dx: dNormed.view([count, width], at: start * width).matrix,
                                accumulate: false, dWeight: headGradient, context: context)
        }
        guard let dNormed else { return (losses, countedRows) }
        var dx = try context.empty(x.shape, x.precision)
        try RMSNorm.backward(dNormed, x: x.matrix, weight: finalNorm, inverseRMS: finalInverse, dWeight: finalNormGradient,
                             into: dx.matrix, context: context)
        // Popped, so that each block's activations go back to the allocator once its backward has run.
        while let blockBackward = backwards.popLast() { dx = try blockBackward(dx) }
        // The embedding adds its rows' gradients to the head's when the two are tied.
        try Embedding.backward(dx, tokens: batch.inputs, dTable: embeddingGradient, context: context)
        return (losses, countedRows)
    }
}

extension DeviceParameters {
    /// Every parameter's part of `buffer`, by name.
    func views(of buffer: Buffer) throws -> DeviceWeights {
        var views: DeviceWeights = [:]
        for segment in segments { views[segment.name] = try view(segment.name, in: buffer) }
        return views
    }
}

extension DeviceWeights {
    /// The tensors whose names start with `prefix`, under their names without it.
    func under(_ prefix: String) -> DeviceWeights {
        Dictionary(uniqueKeysWithValues: compactMap { name, tensor in
            name.hasPrefix(prefix) ? (String(name.dropFirst(prefix.count)), tensor) : nil
        })
    }
}
