/// Attention of a few new query rows per sequence against a paged KV cache on the GPU
/// (`decode_attention.cu`): what ``Attention`` computes for the last rows of each sequence, reading the
/// earlier keys and values from the cache's pages.
enum DecodeAttention {
    /// Tokens per cache page (`PAGE` in the kernel).
    static let pageTokens = 64

    /// `out` `[B, queryRows, Hq, dv]` for `q` `[B, queryRows, Hq, dk]`: sequence `b` holds `contextLengths[b]`
    /// tokens in the pages `pageTable[b]` (the new rows' keys and values already written), and new row `i`
    /// sees the keys up to its own position. The context is split so that the grid fills the GPU.
    /// - Parameters:
    ///   - pageTable: `[B, maxPages]` int32 on the device; contextLengths: `[B]` int32 on the device.
    ///   - longestContext: the largest of the context lengths (sizes the splits).
    static func forward(q: DeviceTensor, keyCache: DeviceTensor, valueCache: DeviceTensor, pageTable: DeviceBuffer,
                        maxPages: Int, contextLengths: DeviceBuffer, longestContext: Int, heads: Attention.Heads,
                        context: CUDAContext) throws -> DeviceTensor {
        let out = try context.empty([q.shape[0], q.shape[1], heads.queryHeads, heads.valueDim], q.precision)
        try forward(q: q, keyCache: keyCache, valueCache: valueCache, pageTable: pageTable, maxPages: maxPages,
                    contextLengths: contextLengths, longestContext: longestContext, heads: heads, into: out, context: context)
        return out
    }

    /// ``forward(q:keyCache:valueCache:pageTable:maxPages:contextLengths:longestContext:heads:context:)``
    /// into `out` `[B, queryRows, Hq, dv]` (a view into a larger tensor, for the pieces of a decode step).
    static func forward(q: DeviceTensor, keyCache: DeviceTensor, valueCache: DeviceTensor, pageTable: DeviceBuffer,
                        maxPages: Int, contextLengths: DeviceBuffer, longestContext: Int, heads: Attention.Heads,
                        into out: DeviceTensor, context: CUDAContext) throws {
        let (batch, queryRows) = (q.shape[0], q.shape[1])
        let rows = heads.group * queryRows
        guard rows <= 64, heads.keyDim % 32 == 0, heads.valueDim <= 128, heads.valueDim % 8 == 0, heads.causal,
              heads.window == nil else {
            throw CUDAError.unsupported("decode attention with \(rows) rows per KV head, head dims \(heads.keyDim)/\(heads.valueDim)")
        }
        precondition(out.shape == [batch, queryRows, heads.queryHeads, heads.valueDim] && out.precision == q.precision,
                     "decode attention output \(out.shape) for q \(q.shape)")
        guard batch > 0, longestContext > 0 else { return }
        // Enough splits for about two blocks per multiprocessor, each a whole number of pages.
        let pages = (longestContext + pageTokens - 1) / pageTokens
        let wanted = max(1, 2 * context.multiprocessorCount / max(1, batch * heads.keyValueHeads))
        let splitPages = max(1, (pages + wanted - 1) / wanted), splits = (pages + splitPages - 1) / splitPages
        let partialRows = batch * queryRows * heads.queryHeads * splits
        let partialOut = try context.empty([partialRows, heads.valueDim], .float32)
        let partialMax = try context.empty([partialRows], .float32), partialSum = try context.empty([partialRows], .float32)
        let maxRows = rows <= 4 ? 4 : rows <= 16 ? 16 : 64
        let defines = ["HEAD_DIM_QK": heads.keyDim, "HEAD_DIM_V": heads.valueDim, "MAX_ROWS": maxRows]
        let partial = try context.kernel("decode_attention_partial", in: .decodeAttention, precision: q.precision, defines: defines)
        // Two stages of a page's keys and values, the queries, and the probabilities and softmax state of every row.
        let sharedBytes = 2 * pageTokens * (heads.keyDim + heads.valueDim) * q.precision.byteCount
            + (maxRows * heads.keyDim + maxRows * pageTokens + 3 * maxRows) * 4
        try context.launch(partial, grid: (splits, heads.keyValueHeads, batch), threads: 128, sharedBytes: sharedBytes,
                           [q.address, keyCache.address, valueCache.address, pageTable.address, contextLengths.address,
                            partialOut.address, partialMax.address, partialSum.address, Int32(heads.queryHeads),
                            Int32(heads.keyValueHeads), Int32(queryRows), Int32(maxPages), Int32(splitPages * pageTokens),
                            Float(heads.scale) * Float(1.4426950408889634)])
        let combine = try context.kernel("decode_attention_combine", in: .decodeAttention, precision: q.precision, defines: defines)
        try context.launch(combine, grid: (batch * queryRows, heads.queryHeads, 1), threads: heads.valueDim,
                           [partialOut.address, partialMax.address, partialSum.address, out.address, UInt64(0), Int32(splits)])
    }

    /// Writes the new rows' keys `[rows, Hkv, dk]` and values `[rows, Hkv, dv]` into the cache pages: row `r`
    /// belongs to sequence `rowSequence[r]` at position `rowPosition[r]` (int32 buffers on the device).
    static func write(keys: DeviceTensor, values: DeviceTensor, rowSequence: DeviceBuffer, rowPosition: DeviceBuffer,
                      pageTable: DeviceBuffer, maxPages: Int, keyCache: DeviceTensor, valueCache: DeviceTensor,
                      heads: Attention.Heads, context: CUDAContext) throws {
        let rows = keys.shape[0]
        guard rows > 0 else { return }
        let kernel = try context.kernel("paged_cache_write", in: .decodeAttention, precision: keys.precision,
                                        defines: ["HEAD_DIM_QK": heads.keyDim, "HEAD_DIM_V": heads.valueDim, "MAX_ROWS": 4])
        let total = rows * heads.keyValueHeads * (heads.keyDim + heads.valueDim)
        try context.launch(kernel, grid: (min((total + 255) / 256, 8 * context.multiprocessorCount), 1, 1), threads: 256,
                           [keys.address, values.address, rowSequence.address, rowPosition.address, pageTable.address,
                            keyCache.address, valueCache.address, Int32(rows), Int32(heads.keyValueHeads), Int32(maxPages)])
    }
}
