import Foundation

extension CUDASelfTest {
    /// One decode-attention check: the heads, the new rows per sequence, every sequence's context length, an
    /// optional sliding window, and optionally a longest context to cut the splits for that is larger than any
    /// sequence's (as a CUDA graph built for a context capacity does: the splits past a sequence's keys are empty).
    struct DecodeShape {
        let queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, newRows: Int
        let lengths: [Int]
        var window: Int? = nil
        var splitContext: Int? = nil

        var name: String {
            "decode attention Hq\(queryHeads) Hkv\(keyValueHeads) d\(keyDim)/\(valueDim) rows\(newRows) contexts \(lengths)"
                + (window.map { " window \($0)" } ?? "") + (splitContext.map { " split for \($0)" } ?? "")
        }
    }

    /// Decode attention over a paged cache against attention written out plainly in float64 for the last rows
    /// of each sequence: several sequences of different lengths (page multiples and not, one past a page, some
    /// long enough for many splits), pages handed out in shuffled order, one to eight new rows per sequence,
    /// GQA groups 1 to 8, head dims 64 to 192, sliding windows shorter and longer than the context, and splits
    /// cut for a longer context than any sequence has. In bf16, every shape with more than one packed row per KV
    /// head (group times new rows) runs the tensor-core kernel, the others the streaming one; float32 always
    /// streams. The cache pool is NaN-poisoned, so a read past a sequence's keys shows.
    static var decodeCases: [Case] {
        let shapes = [
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 1, lengths: [1, 300, 4097, 64]),
            DecodeShape(queryHeads: 4, keyValueHeads: 4, keyDim: 128, valueDim: 128, newRows: 2, lengths: [5, 1000]),
            DecodeShape(queryHeads: 16, keyValueHeads: 2, keyDim: 64, valueDim: 64, newRows: 1, lengths: [70, 129, 2]),
            DecodeShape(queryHeads: 8, keyValueHeads: 1, keyDim: 128, valueDim: 128, newRows: 8, lengths: [8, 513]),
            DecodeShape(queryHeads: 2, keyValueHeads: 2, keyDim: 64, valueDim: 64, newRows: 3, lengths: [3, 64, 65, 200]),
            DecodeShape(queryHeads: 8, keyValueHeads: 1, keyDim: 128, valueDim: 128, newRows: 1, lengths: [8, 200]),
            DecodeShape(queryHeads: 16, keyValueHeads: 16, keyDim: 128, valueDim: 128, newRows: 1, lengths: [20000, 1, 777]),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 1, lengths: [30000]),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 4, lengths: [4, 6000, 129]),
            DecodeShape(queryHeads: 4, keyValueHeads: 4, keyDim: 192, valueDim: 128, newRows: 1, lengths: [100, 1030]),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 1, lengths: [1, 300, 5000, 64], window: 256),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 64, valueDim: 64, newRows: 5, lengths: [5, 140, 1000], window: 70),
            DecodeShape(queryHeads: 2, keyValueHeads: 1, keyDim: 128, valueDim: 128, newRows: 2, lengths: [30, 3000], window: 4096),
            DecodeShape(queryHeads: 4, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 7, lengths: [7, 64, 1000, 130]),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 192, valueDim: 128, newRows: 1, lengths: [100, 2049]),
            DecodeShape(queryHeads: 8, keyValueHeads: 2, keyDim: 128, valueDim: 128, newRows: 1, lengths: [1, 65, 3000],
                        splitContext: 131_072),
            DecodeShape(queryHeads: 4, keyValueHeads: 1, keyDim: 128, valueDim: 128, newRows: 6, lengths: [6, 300, 77],
                        window: 100, splitContext: 8192),
        ]
        return shapes.map { shape in
            Case(name: shape.name) { context, precision in try decodeAttentionCheck(shape, context: context, precision: precision) }
        }
    }

    static func decodeAttentionCheck(_ shape: DecodeShape, context: CUDAContext, precision: CUDAPrecision) throws
        -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        let (queryHeads, keyValueHeads, keyDim, valueDim, lengths) = (shape.queryHeads, shape.keyValueHeads, shape.keyDim,
                                                                      shape.valueDim, shape.lengths)
        let heads = Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: keyDim, valueDim: valueDim,
                                    scale: 1 / Double(keyDim).squareRoot(), window: shape.window)
        let pageTokens = DecodeAttention.pageTokens
        let pagesPerSequence = lengths.map { ($0 + pageTokens - 1) / pageTokens }
        let maxPages = pagesPerSequence.max()!
        var generator = SplitMix64(seed: 41)
        // Two spare pages in the pool that no sequence owns (NaN-poisoned).
        var pool = Array(0..<(pagesPerSequence.reduce(0, +) + 2))
        for i in pool.indices.reversed() { pool.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        var table = [Int32](repeating: 0, count: lengths.count * maxPages), next = 0
        for (b, pages) in pagesPerSequence.enumerated() {
            for page in 0..<pages { table[b * maxPages + page] = Int32(pool[next]); next += 1 }
        }
        let totalTokens = lengths.reduce(0, +)
        let k = representable(Tensor<Float>(randomNormal: [totalTokens, keyValueHeads, keyDim], seed: 42), precision)
        let v = representable(Tensor<Float>(randomNormal: [totalTokens, keyValueHeads, valueDim], seed: 43), precision)
        // Sequences shorter than the new rows get as many new rows as the shortest has tokens.
        let rows = min(shape.newRows, lengths.min()!)
        let q = representable(Tensor<Float>(randomNormal: [lengths.count, rows, queryHeads, keyDim], seed: 44), precision)
        let out = try context.exclusive { () -> Tensor<Float> in
            let keyCache = try context.empty([pool.count, pageTokens, keyValueHeads, keyDim], precision)
            let valueCache = try context.empty([pool.count, pageTokens, keyValueHeads, valueDim], precision)
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
            return try context.download(try DecodeAttention.forward(
                q: try context.upload(q, precision), keyCache: keyCache, valueCache: valueCache, pageTable: pageTable,
                maxPages: maxPages, contextLengths: try context.upload(lengths.map(Int32.init)),
                longestContext: shape.splitContext ?? lengths.max()!,
                heads: heads, context: context))
        }
        let reference = decodeAttentionReference(q: q, k: k, v: v, lengths: lengths, heads: heads)
        let width = rows * queryHeads * valueDim
        return lengths.indices.map { b in
            (Tensor(checked: [rows, queryHeads * valueDim], Array(out.storage[(b * width)..<((b + 1) * width)])),
             Tensor(checked: [rows, queryHeads * valueDim], Array(reference.storage[(b * width)..<((b + 1) * width)])))
        }
    }

    /// `[B, rows, Hq, dv]`: new row `i` of sequence `b` (position `p = length - rows + i`) attending its
    /// sequence's keys from `max(0, p - window + 1)` (0 without a window) to `p`, in float64. `k` and `v` hold
    /// every sequence's tokens one after another, `[tokens, Hkv, d]`.
    static func decodeAttentionReference(q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, lengths: [Int],
                                         heads: Attention.Heads) -> Tensor<Float> {
        let (rows, queryHeads, keyValueHeads) = (q.shape[1], heads.queryHeads, heads.keyValueHeads)
        let (keyDim, valueDim, group) = (heads.keyDim, heads.valueDim, heads.queryHeads / heads.keyValueHeads)
        var out = [Float](repeating: 0, count: lengths.count * rows * queryHeads * valueDim)
        var sequenceStart = 0
        for (b, length) in lengths.enumerated() {
            for i in 0..<rows {
                let position = length - rows + i
                let first = heads.window.map { max(0, position - $0 + 1) } ?? 0
                for head in 0..<queryHeads {
                    let kvHead = head / group
                    let query = ((b * rows + i) * queryHeads + head) * keyDim
                    let scores = (first...position).map { key -> Double in
                        let keyStart = ((sequenceStart + key) * keyValueHeads + kvHead) * keyDim
                        var dot = 0.0
                        for c in 0..<keyDim { dot += Double(q.storage[query + c]) * Double(k.storage[keyStart + c]) }
                        return dot * heads.scale
                    }
                    let maximum = scores.max()!
                    let weights = scores.map { exp($0 - maximum) }
                    let total = weights.reduce(0, +)
                    let output = ((b * rows + i) * queryHeads + head) * valueDim
                    for c in 0..<valueDim {
                        var value = 0.0
                        for (offset, weight) in weights.enumerated() {
                            value += weight * Double(v.storage[((sequenceStart + first + offset) * keyValueHeads + kvHead) * valueDim + c])
                        }
                        out[output + c] = Float(value / total)
                    }
                }
            }
            sequenceStart += length
        }
        return Tensor(checked: [lengths.count, rows, queryHeads, valueDim], out)
    }
}
