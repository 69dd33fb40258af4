extension Embedding {
    /// `tokens` as int32 on the device, each checked against the vocabulary first (so no kernel reads
    /// outside the table).
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)``.
    static func upload(_ tokens: [Int], vocabSize: Int, context: CUDAContext) throws -> DeviceBuffer {
        if let bad = tokens.first(where: { !(0..<vocabSize).contains($0) }) {
            throw EmbeddingError.tokenOutOfRange(token: bad, vocabSize: vocabSize)
        }
        return try context.upload(tokens.map { Int32($0) })
    }

    /// ``forward(_:table:)`` on the GPU (`embedding.cu`): the rows of `table` `[vocab, E]` for `tokens`
    /// → `[tokens.count, E]`, in the table's precision.
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)``.
    static func forward(_ tokens: [Int], table: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        try forward(ids: try upload(tokens, vocabSize: table.shape[0], context: context), count: tokens.count, table: table,
                    context: context)
    }

    /// The rows of `table` for the first `count` int32 ids of `ids` on the device, which the caller has
    /// checked against the table's rows (a decode step's tokens, or the rows of a gather).
    static func forward(ids: DeviceBuffer, count: Int, table: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let (vocab, width) = (table.shape[0], table.shape[1])
        precondition(4 * count <= ids.byteCount, "\(count) ids in \(ids.byteCount) bytes")
        let x = try context.empty([count, width], table.precision)
        let kernel = try context.kernel("embedding_forward", in: .embedding, precision: table.precision)
        try context.launchElementwise(kernel, count: count * width,
                                      [table.address, ids.address, x.address, Int64(count), Int32(width), Int32(vocab)])
        return x
    }

    /// ``backward(_:tokens:dTable:)`` on the GPU: adds each row of `dx` `[tokens.count, E]` to its token's
    /// row of the float32 `dTable` `[vocab, E]`. Float atomics: rows of one token add in any order, so the
    /// last bits may differ from run to run.
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)``.
    static func backward(_ dx: DeviceTensor, tokens: [Int], dTable: DeviceTensor, context: CUDAContext) throws {
        let (vocab, width) = (dTable.shape[0], dTable.shape[1])
        precondition(dTable.precision == .float32 && dx.count == tokens.count * width, "embedding backward: dx \(dx.shape), table \(dTable.shape)")
        let ids = try upload(tokens, vocabSize: vocab, context: context)
        let kernel = try context.kernel("embedding_backward", in: .embedding, precision: dx.precision)
        try context.launchElementwise(kernel, count: tokens.count * width,
                                      [dx.address, ids.address, dTable.address, Int64(tokens.count), Int32(width), Int32(vocab)])
    }
}
