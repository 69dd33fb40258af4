/// ``ZayaModel/logits(tokens:batch:length:mask:chunkLengths:)`` on the GPU (`cca logits --model DIR --device
/// cuda`): the model uploaded as ``DeviceZayaModel``, every sequence run through the paged decode cache, the
/// whole sequence as one chunk or in the chunks given, all sequences of a chunk in one step.
public enum DeviceZayaLogits {
    /// The logits `[B, S, vocab]` (float32; 0 at padded positions) of `tokens` (`B·S` ids, row-major).
    /// - Parameters:
    ///   - mask: `[B, S]`, 1 for a token and 0 for padding; on the GPU each sequence's tokens must come first
    ///     (right padding).
    ///   - chunkLengths: chunk lengths summing to `S` (zeros skipped); nil runs each sequence as one chunk.
    /// - Throws: ``ZayaGPUError``, ``DecodeError/chunksDoNotSum(chunks:length:)``, ``ShapeError``,
    ///   ``EmbeddingError``, ``CUDAError``.
    public static func logits(_ model: ZayaModel, tokens: [Int], batch: Int, length: Int, mask: Tensor<Float>? = nil,
                              chunkLengths: [Int]? = nil, precision: CUDAPrecision) throws -> Tensor<Float> {
        let (rows, overflow) = batch.multipliedReportingOverflow(by: length)
        guard batch > 0, length > 0, !overflow, tokens.count == rows else {
            throw ShapeError.mismatch(name: "input_ids", expected: [batch, length], actual: [tokens.count])
        }
        let chunks = chunkLengths ?? [length]
        guard chunks.allSatisfy({ $0 >= 0 }), SequenceLayout.total(chunks) == length else {
            throw DecodeError.chunksDoNotSum(chunks: chunks, length: length)
        }
        let lengths = try validLengths(mask: mask, batch: batch, length: length)
        let vocab = model.config.vocabSize
        if let bad = (0..<batch).lazy.flatMap({ b in (0..<lengths[b]).map { tokens[b * length + $0] } }).first(where: { !(0..<vocab).contains($0) }) {
            throw EmbeddingError.tokenOutOfRange(token: bad, vocabSize: vocab)
        }
        let context = try CUDAContext.shared()
        return try context.exclusive {
            let resident = try DeviceZayaModel(model, precision: precision, context: context)
            let pagesPerSequence = (length + DecodeAttention.pageTokens - 1) / DecodeAttention.pageTokens
            let cache = try resident.makeCache(pageCount: batch * pagesPerSequence, stateSlots: batch, context: context)
            let ids = try (0..<batch).map { _ in try cache.add(capacity: length) }
            var logits = [Float](repeating: 0, count: rows * vocab)
            var start = 0
            for chunk in chunks where chunk > 0 {
                let members = (0..<batch).filter { lengths[$0] > start }
                let counts = members.map { min(chunk, lengths[$0] - start) }
                start += chunk
                guard !members.isEmpty else { continue }
                let begin = start - chunk
                let stepTokens = zip(members, counts).flatMap { b, count in tokens[(b * length + begin)..<(b * length + begin + count)] }
                var step = try DeviceDecodeStep(sequences: zip(members, counts).map { b, count in
                    (cache.sequences[ids[b]]!.state, begin, count, cache.sequences[ids[b]]!.pages)
                }, tokens: Array(stepTokens), context: context)
                let out = try context.download(try resident.forward(step: &step, cache: cache, allRows: true, context: context))
                var row = 0
                for (b, count) in zip(members, counts) {
                    for t in begin..<(begin + count) {
                        let destination = (b * length + t) * vocab
                        logits.replaceSubrange(destination..<(destination + vocab), with: out.storage[(row * vocab)..<((row + 1) * vocab)])
                        row += 1
                    }
                }
            }
            return Tensor(checked: [batch, length, vocab], logits)
        }
    }

    /// Each sequence's number of tokens under `mask` (all of them without one).
    /// - Throws: ``ZayaGPUError/maskNotRightPadded(sequence:)`` when a token follows padding; ``ShapeError``.
    static func validLengths(mask: Tensor<Float>?, batch: Int, length: Int) throws -> [Int] {
        guard let mask else { return Array(repeating: length, count: batch) }
        guard mask.count == batch * length else { throw ShapeError.mismatch(name: "attention_mask", expected: [batch, length], actual: mask.shape) }
        return try (0..<batch).map { b in
            let row = mask.storage[(b * length)..<((b + 1) * length)]
            let valid = row.prefix { $0 != 0 }.count
            guard row.dropFirst(valid).allSatisfy({ $0 == 0 }) else { throw ZayaGPUError.maskNotRightPadded(sequence: b) }
            return valid
        }
    }
}
