/// One attention layer run on the GPU through the paged decode cache, each sequence of `x` fed in chunks
/// (`cca forward --device cuda --chunks 7,1,1,5`): what ``AttentionLayer/forwardInChunks(_:chunkLengths:)``
/// computes on the CPU, all sequences of a chunk index in one step.
public enum DeviceChunkedForward {
    /// `y` `[B, S, E]` for `x` `[B, S, E]`, each sequence fed its rows in chunks of `chunkLengths` (summing to `S`;
    /// zeros are skipped).
    /// - Throws: ``DecodeError/chunksDoNotSum(chunks:length:)``, ``CUDAError`` when the GPU or the layer's
    ///   decode path is unavailable.
    public static func forward(_ layer: any AttentionLayer<Float>, x: Tensor<Float>, chunkLengths: [Int],
                               precision: CUDAPrecision) throws -> Tensor<Float> {
        guard x.rank == 3 else { throw ShapeError.rank(name: "input x", expected: 3, actual: x.shape) }
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        guard chunkLengths.allSatisfy({ $0 >= 0 }), SequenceLayout.total(chunkLengths) == length else {
            throw DecodeError.chunksDoNotSum(chunks: chunkLengths, length: length)
        }
        let context = try CUDAContext.shared()
        return try context.exclusive {
            let decoder = try DeviceDecodeModel.decodeLayer(layer.config, weights: layer.weights, precision: precision,
                                                              context: context)
            let pagesPerSequence = max(1, (length + DecodeAttention.pageTokens - 1) / DecodeAttention.pageTokens)
            let cache = try DeviceDecodeCache(shapes: [(decoder.decodeHeads, decoder.convolutionState)],
                                              pageCount: batch * pagesPerSequence, stateSlots: max(1, batch),
                                              precision: precision, context: context)
            let ids = try (0..<batch).map { _ in try cache.add(capacity: length) }
            var y = [Float](repeating: 0, count: x.count)
            var start = 0
            for chunk in chunkLengths where chunk > 0 {
                var rows: [Float] = []
                for b in 0..<batch { rows += x.storage[((b * length + start) * width)..<((b * length + start + chunk) * width)] }
                var step = try DeviceDecodeStep(
                    sequences: ids.map { (cache.sequences[$0]!.state, start, chunk, cache.sequences[$0]!.pages) }, context: context)
                let out = try context.download(try decoder.decode(try context.upload(Tensor(checked: [batch * chunk, width], rows), precision),
                                                                  step: &step, cache: cache.layers[0], context: context))
                for b in 0..<batch {
                    y.replaceSubrange(((b * length + start) * width)..<((b * length + start + chunk) * width),
                                      with: out.storage[((b * chunk) * width)..<((b + 1) * chunk * width)])
                }
                start += chunk
            }
            return Tensor(checked: x.shape, y)
        }
    }
}
