extension CUDASelfTest {
    /// Decode attention over a paged cache against the CPU attention of the whole sequences (the last rows
    /// of a full causal pass are what decoding those rows computes): several sequences of different lengths,
    /// pages handed out in shuffled order, one to eight new rows per sequence, GQA groups 1 to 8.
    static var decodeCases: [Case] {
        // (query heads, KV heads, head dim, new rows, context lengths)
        let shapes: [(Int, Int, Int, Int, [Int])] = [
            (8, 2, 128, 1, [1, 300, 4097, 64]), (4, 4, 128, 2, [5, 1000]), (16, 2, 64, 1, [70, 129, 2]),
            (8, 1, 128, 8, [8, 513]), (2, 2, 64, 3, [3, 64, 65, 200]), (8, 1, 128, 1, [8, 200]),
        ]
        return shapes.map { queryHeads, keyValueHeads, headDim, newRows, lengths in
            Case(name: "decode attention Hq\(queryHeads) Hkv\(keyValueHeads) d\(headDim) rows\(newRows) contexts \(lengths)") { context, precision in
                let heads = Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: headDim, valueDim: headDim,
                                            scale: 1 / Double(headDim).squareRoot())
                let pageTokens = DecodeAttention.pageTokens
                let pagesPerSequence = lengths.map { ($0 + pageTokens - 1) / pageTokens }
                let maxPages = pagesPerSequence.max()!
                var generator = SplitMix64(seed: 41)
                var pool = Array(0..<pagesPerSequence.reduce(0, +))
                for i in pool.indices.reversed() { pool.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
                var table = [Int32](repeating: 0, count: lengths.count * maxPages), next = 0
                for (b, pages) in pagesPerSequence.enumerated() {
                    for page in 0..<pages { table[b * maxPages + page] = Int32(pool[next]); next += 1 }
                }
                // Every sequence's keys and values, and its last rows' queries (sequences shorter than the
                // new rows are given fewer of them, by padding with repeated first rows on the CPU side).
                var gpuOut: [Tensor<Float>] = [], reference: [Tensor<Float>] = []
                let totalRows = lengths.reduce(0, +)
                let k = representable(Tensor<Float>(randomNormal: [totalRows, keyValueHeads, headDim], seed: 42), precision)
                let v = representable(Tensor<Float>(randomNormal: [totalRows, keyValueHeads, headDim], seed: 43), precision)
                let q = representable(Tensor<Float>(randomNormal: [totalRows, queryHeads, headDim], seed: 44), precision)
                let layout = try SequenceLayout(lengths: lengths)
                let full = Attention.forward(q: q, k: k, v: v, layout: layout, heads: heads).out
                let rows = min(newRows, lengths.min()!)
                var queries: [Float] = []
                for range in layout.sequences {
                    queries += q.storage[((range.upperBound - rows) * queryHeads * headDim)..<(range.upperBound * queryHeads * headDim)]
                    reference.append(Tensor(checked: [rows, queryHeads * headDim],
                                            Array(full.storage[((range.upperBound - rows) * queryHeads * headDim)..<(range.upperBound * queryHeads * headDim)])))
                }
                let out = try context.exclusive { () -> Tensor<Float> in
                    let pageCount = pool.count
                    let keyCache = try context.empty([pageCount, pageTokens, keyValueHeads, headDim], precision)
                    let valueCache = try context.empty([pageCount, pageTokens, keyValueHeads, headDim], precision)
                    let pageTable = try context.upload(table)
                    var rowSequence: [Int32] = [], rowPosition: [Int32] = []
                    for (b, length) in lengths.enumerated() {
                        rowSequence += [Int32](repeating: Int32(b), count: length)
                        rowPosition += (0..<length).map(Int32.init)
                    }
                    try DecodeAttention.write(keys: try context.upload(k, precision), values: try context.upload(v, precision),
                                              rowSequence: try context.upload(rowSequence), rowPosition: try context.upload(rowPosition),
                                              pageTable: pageTable, maxPages: maxPages, keyCache: keyCache, valueCache: valueCache,
                                              heads: heads, context: context)
                    let qDevice = try context.upload(Tensor(checked: [lengths.count, rows, queryHeads, headDim], queries), precision)
                    return try context.download(try DecodeAttention.forward(
                        q: qDevice, keyCache: keyCache, valueCache: valueCache, pageTable: pageTable, maxPages: maxPages,
                        contextLengths: try context.upload(lengths.map(Int32.init)), longestContext: lengths.max()!,
                        heads: heads, context: context))
                }
                for b in lengths.indices {
                    let width = rows * queryHeads * headDim
                    gpuOut.append(Tensor(checked: [rows, queryHeads * headDim], Array(out.storage[(b * width)..<((b + 1) * width)])))
                }
                return Array(zip(gpuOut, reference))
            }
        }
    }
}
