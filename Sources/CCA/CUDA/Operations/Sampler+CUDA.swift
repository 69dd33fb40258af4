extension Sampler {
    /// The GPU twin of ``sample(_:)`` (`sampling.cu`): the next token of each row of `logits` `[rows, vocab]`
    /// (float32 or bfloat16 on the device), row `r` chosen as `samplers[r].sample` would choose it from the
    /// same logits: the same temperature, top-k and top-p, and the same uniform draw taken from its generator
    /// (so a seeded run draws the same stream on either side; the chosen token can differ only where rounding
    /// moves a boundary of the distribution across the draw). Only the token ids come back to the host.
    /// - Returns: the tokens, and the distributions they were drawn from `[rows, vocab]` (float32, on the device).
    static func sample(logits: DeviceTensor, samplers: inout [Sampler], context: CUDAContext) throws
        -> (tokens: [Int], distributions: DeviceTensor) {
        precondition(logits.shape.count == 2 && logits.shape[0] == samplers.count,
                     "sampling \(samplers.count) rows from logits \(logits.shape)")
        let (rows, vocab) = (logits.shape[0], logits.shape[1])
        guard vocab <= 1 << 24 else {
            // The kernel counts tokens in float32, exact to 2^24.
            throw CUDAError.unsupported("sampling from a vocabulary of \(vocab) tokens (at most 2^24)")
        }
        let distributions = try context.empty([rows, vocab], .float32)
        guard rows > 0, vocab > 0 else { return ([], distributions) }
        let draws = samplers.indices.map { samplers[$0].nextDraw() }
        let tokens = try context.empty([rows], .float32)  // int32 ids
        // Held until the launch is queued: a buffer released earlier could be handed to the next upload.
        let temperatures = try context.upload(samplers.map(\.temperature))
        let topKs = try context.upload(samplers.map { Int32(clamping: $0.topK ?? 0) })
        let topPs = try context.upload(samplers.map { $0.topP ?? 1 }), drawBuffer = try context.upload(draws)
        let kernel = try context.kernel("sample_tokens", in: .sampling, precision: logits.precision)
        try context.launch(kernel, grid: (rows, 1, 1), threads: 1024,
                           [logits.address, temperatures.address, topKs.address, topPs.address, drawBuffer.address,
                            tokens.address, distributions.address, Int32(vocab)])
        return (try context.download(Int32.self, rows, from: tokens.buffer).map(Int.init), distributions)
    }
}
