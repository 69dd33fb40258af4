import RealModule

/// Causal softmax attention with grouped key/value heads, the core every layer shares, for full passes
/// and for decoding against a cache.
///
/// `out[t,h] = Σ_s softmax_s(scale · q[t,h]·k[s,h/g]) · v[s,h/g]` over keys `s ≤ t + queryOffset` that the
/// key mask keeps; `g = queryHeads / keyValueHeads`. A query row with no visible key gets zeros.
///
/// Work is split into tasks of (sequence, query head, block of `blockRows` queries); each task forms its
/// score block with one matrix product, applies the causal mask and softmax in place, and multiplies by V.
public enum CausalAttention {
    static let blockRows = 64

    /// One sequence's operands as strided rows: row `t` of q holds `queryHeads` vectors of `keyDim`
    /// starting at `q + t·queryRowStride`, and so on. Strides let a cache or a fused buffer be read in place.
    public struct Operands {
        public var q: UnsafePointer<Float>, queryRowStride: Int
        public var k: UnsafePointer<Float>, keyRowStride: Int
        public var v: UnsafePointer<Float>, valueRowStride: Int
        public var out: UnsafeMutablePointer<Float>, outRowStride: Int
        public var queries: Int, queryOffset: Int
        /// Flags for the `queries + queryOffset` keys, or nil when every key is valid.
        public var keyValid: UnsafePointer<Bool>?

        public init(q: UnsafePointer<Float>, queryRowStride: Int, k: UnsafePointer<Float>, keyRowStride: Int,
                    v: UnsafePointer<Float>, valueRowStride: Int, out: UnsafeMutablePointer<Float>, outRowStride: Int,
                    queries: Int, queryOffset: Int, keyValid: UnsafePointer<Bool>? = nil) {
            (self.q, self.queryRowStride, self.k, self.keyRowStride) = (q, queryRowStride, k, keyRowStride)
            (self.v, self.valueRowStride, self.out, self.outRowStride) = (v, valueRowStride, out, outRowStride)
            (self.queries, self.queryOffset, self.keyValid) = (queries, queryOffset, keyValid)
        }
    }

    /// Head layout shared by every sequence of one call.
    public struct Heads {
        public var queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, scale: Float
        public init(queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, scale: Float) {
            (self.queryHeads, self.keyValueHeads, self.keyDim, self.valueDim, self.scale) =
                (queryHeads, keyValueHeads, keyDim, valueDim, scale)
        }
    }

    /// Attention for several sequences at once (all cores share the tasks of all of them).
    public static func run(_ sequences: [Operands], heads: Heads) {
        let blockCounts = sequences.map { ($0.queries + blockRows - 1) / blockRows }
        var tasks: [(sequence: Int, head: Int, block: Int)] = []
        for (index, blocks) in blockCounts.enumerated() {
            for head in 0..<heads.queryHeads { for block in 0..<blocks { tasks.append((index, head, block)) } }
        }
        // Longest blocks (latest queries) first, so the tail of the parallel loop is short.
        tasks.sort { $0.block > $1.block }
        parallelFor(tasks.count) { index in
            let task = tasks[index]
            attendBlock(sequences[task.sequence], heads: heads, head: task.head, firstRow: task.block * blockRows)
        }
    }

    private static func attendBlock(_ o: Operands, heads: Heads, head: Int, firstRow: Int) {
        let rows = min(blockRows, o.queries - firstRow)
        let visibleKeys = firstRow + rows + o.queryOffset
        let kvHead = head / (heads.queryHeads / heads.keyValueHeads)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * visibleKeys)
        defer { scores.deallocate() }
        MatrixMultiply.gemm(transposeB: true, m: rows, n: visibleKeys, k: heads.keyDim, alpha: heads.scale,
                            a: o.q + firstRow * o.queryRowStride + head * heads.keyDim, lda: o.queryRowStride,
                            b: o.k + kvHead * heads.keyDim, ldb: o.keyRowStride,
                            c: scores, ldc: visibleKeys, parallel: false)
        for r in 0..<rows {
            softmaxRow(scores + r * visibleKeys, count: visibleKeys, visibleThrough: firstRow + r + o.queryOffset,
                       keyValid: o.keyValid)
        }
        MatrixMultiply.gemm(m: rows, n: heads.valueDim, k: visibleKeys, a: scores, lda: visibleKeys,
                            b: o.v + kvHead * heads.valueDim, ldb: o.valueRowStride,
                            c: o.out + firstRow * o.outRowStride + head * heads.valueDim, ldc: o.outRowStride,
                            parallel: false)
    }

    /// In-place softmax over the visible entries `row[0...limit]` (and valid keys); every other entry becomes 0.
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, visibleThrough limit: Int,
                           keyValid: UnsafePointer<Bool>?) {
        if let keyValid {
            for s in 0...limit where !keyValid[s] { row[s] = -Float.infinity }
        }
        var maximum = -Float.infinity
        for s in 0...limit { maximum = max(maximum, row[s]) }
        guard maximum > -Float.infinity else {
            row.update(repeating: 0, count: count)
            return
        }
        let visible = limit + 1
        var sums = SIMD8<Float>()
        var s = 0
        while s + 8 <= visible {
            let raw = UnsafeMutableRawPointer(row + s)
            let weights = exp8(raw.loadUnaligned(as: SIMD8<Float>.self) - maximum)
            raw.storeBytes(of: weights, as: SIMD8<Float>.self)
            sums += weights
            s += 8
        }
        if s < visible {
            var tail = SIMD8<Float>(repeating: -Float.infinity)
            for i in 0..<(visible - s) { tail[i] = row[s + i] }
            let weights = exp8(tail - maximum)
            for i in 0..<(visible - s) { row[s + i] = weights[i] }
            sums += weights
        }
        (row + visible).update(repeating: 0, count: count - visible)
        let inverse = 1 / sums.sum()
        for s in 0..<visible { row[s] *= inverse }
    }

    /// Full causal attention over `[B, S, …]` tensors.
    ///
    /// - Parameters:
    ///   - q: `[B, S, Hq, dk]`; k: `[B, S, Hkv, dk]`; v: `[B, S, Hkv, dv]`.
    ///   - keyValid: optional `[B·S]` flags; keys with `false` are never attended.
    /// - Returns: `[B, S, Hq, dv]`.
    public static func forward(q: Tensor, k: Tensor, v: Tensor, scale: Float, keyValid: [Bool]? = nil) -> Tensor {
        let (batch, length, queryHeads, keyDim) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (keyValueHeads, valueDim) = (k.shape[2], v.shape[3])
        var out = Tensor(zeros: [batch, length, queryHeads, valueDim])
        let heads = Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: keyDim, valueDim: valueDim, scale: scale)
        q.storage.withUnsafeBufferPointer { qs in k.storage.withUnsafeBufferPointer { ks in
        v.storage.withUnsafeBufferPointer { vs in out.storage.withUnsafeMutableBufferPointer { outs in
        (keyValid ?? []).withUnsafeBufferPointer { valid in
            let sequences = (0..<batch).map { b in
                Operands(q: qs.baseAddress! + b * length * queryHeads * keyDim, queryRowStride: queryHeads * keyDim,
                         k: ks.baseAddress! + b * length * keyValueHeads * keyDim, keyRowStride: keyValueHeads * keyDim,
                         v: vs.baseAddress! + b * length * keyValueHeads * valueDim, valueRowStride: keyValueHeads * valueDim,
                         out: outs.baseAddress! + b * length * queryHeads * valueDim, outRowStride: queryHeads * valueDim,
                         queries: length, queryOffset: 0, keyValid: keyValid == nil ? nil : valid.baseAddress! + b * length)
            }
            run(sequences, heads: heads)
        }}}}}
        return out
    }
}
