extension CrossEntropy {
    /// ``forward(logits:targets:vocab:)`` on the GPU (`cross_entropy.cu`), one loss per row, written into
    /// `losses` `[rows]` (float32; a view of a larger buffer when called on chunks of rows):
    /// `logsumexp(row) − row[target]`, 0 for an ignored row, NaN for a row holding NaN. `logits`
    /// `[rows, vocab]` is left as it is.
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)`` for a target outside the vocabulary.
    static func forward(logits: DeviceTensor, targets: [Int], into losses: DeviceTensor, context: CUDAContext) throws {
        try run(logits: logits, targets: targets, losses: losses, weight: 0, writeGradient: false, context: context)
    }

    /// ``backward(logits:targets:vocab:)`` on the GPU: the per-row losses of
    /// ``forward(logits:targets:into:context:)``, and `logits` replaced in place by `dLogits`
    /// `(softmax − onehot) / countedRows` (zero rows where ignored).
    ///
    /// Call it on chunks of rows, so that the whole `[tokens, vocab]` logits never exist at once:
    /// `countedRows` counts the rows with a target in the whole batch, so that every chunk's gradient is that
    /// of one mean, and ``meanLoss(_:countedRows:context:)`` on the whole `losses` buffer gives the mean.
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)`` for a target outside the vocabulary.
    static func backward(logits: DeviceTensor, targets: [Int], countedRows: Int, into losses: DeviceTensor,
                         context: CUDAContext) throws {
        precondition(countedRows >= targets.filter { $0 != ignored }.count, "cross-entropy: \(countedRows) counted rows for this chunk's targets")
        try run(logits: logits, targets: targets, losses: losses, weight: countedRows > 0 ? 1 / Float(countedRows) : 0,
                writeGradient: true, context: context)
    }

    /// The mean of the per-row `losses` `[rows]` over `countedRows` (0 when none count): a deterministic sum
    /// on the device, then one value back to the host (which waits for the queued work).
    static func meanLoss(_ losses: DeviceTensor, countedRows: Int, context: CUDAContext) throws -> Float {
        guard countedRows > 0 else { return 0 }
        let sum = try context.empty([1], .float32)
        try ColumnSums.sum(losses.reshaped([losses.count, 1]).matrix, into: sum, accumulate: false, context: context)
        return try context.download(sum).storage[0] / Float(countedRows)
    }

    private static func run(logits: DeviceTensor, targets: [Int], losses: DeviceTensor, weight: Float, writeGradient: Bool,
                            context: CUDAContext) throws {
        let vocab = logits.shape.last!
        precondition(logits.count == targets.count * vocab && losses.count == targets.count && losses.precision == .float32,
                     "cross-entropy: logits \(logits.shape) and losses \(losses.shape) for \(targets.count) targets")
        if let bad = targets.first(where: { $0 != ignored && !(0..<vocab).contains($0) }) {
            throw EmbeddingError.tokenOutOfRange(token: bad, vocabSize: vocab)
        }
        guard !targets.isEmpty else { return }
        let ids = try context.upload(targets.map { Int32($0) })
        let kernel = try context.kernel("cross_entropy", in: .crossEntropy, precision: logits.precision)
        // The row is kept in shared memory between the passes when it fits (a 50304 bfloat16 vocabulary does).
        let rowBytes = (vocab * logits.precision.byteCount + 15) / 16 * 16
        let cached = writeGradient && rowBytes <= context.sharedBytesPerBlock - 1024  // 1 KiB for the static warp states
        try context.launch(kernel, grid: (targets.count, 1, 1), threads: 512,  // THREADS in cross_entropy.cu
                           sharedBytes: cached ? rowBytes : 0,
                           [logits.address, ids.address, losses.address, Int32(vocab), weight, Int32(writeGradient ? 1 : 0),
                            Int32(CUDAContext.elementsPerStep(width: vocab, logits)), Int32(cached ? 1 : 0)])
    }
}
