/// Causal softmax attention with grouped key/value heads: the core every layer shares, for full passes,
/// packed documents, chunks continuing a cache, and training.
///
/// For query row `t` of a sequence at position `p = keyOffset + t`, head `h` uses key/value head
/// `h / g` (`g = Hq / Hkv`) and sees keys `s` with `lo(p) ≤ s ≤ p` that the key mask keeps, where
/// `lo(p) = p − window + 1` with a sliding window and 0 without:
/// `out[t,h] = Σ_s softmax_s(scale · q[t,h]·k[s,h/g]) · v[s,h/g]`, and `lse[t,h] = log Σ_s exp(scale · q·k)`.
/// Non-causal attention (`causal: false`) lets every query see every key of its sequence.
/// A row with no visible key gets zeros and `lse = −∞`; a NaN or infinite score makes its row NaN.
///
/// The forward pass never forms more than a block of scores: tasks of (sequence, query head, block of
/// ``blockRows`` queries) each take one matrix product for the block's scores, the softmax in place, and
/// one for the values. This is the reference; float32 attention without a sliding window or key mask runs
/// the CPU kernels' fused forward instead (``AttentionKernel``), which computes the same function. The backward pass recomputes the probabilities from `lse` block by block, as
/// FlashAttention does, so training memory grows with `S`, not `S²`.
public enum Attention {
    static let blockRows = 64

    /// Head layout shared by every sequence of one call.
    public struct Heads: Sendable, Equatable {
        public var queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, scale: Double
        /// Keys a query sees at most, counting itself (nil: all earlier keys).
        public var window: Int?
        /// Whether query `t` sees only keys up to its own position.
        public var causal: Bool

        public init(queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, scale: Double, window: Int? = nil,
                    causal: Bool = true) {
            (self.queryHeads, self.keyValueHeads, self.keyDim, self.valueDim) = (queryHeads, keyValueHeads, keyDim, valueDim)
            (self.scale, self.window, self.causal) = (scale, window, causal)
        }

        var group: Int { queryHeads / keyValueHeads }
    }

    /// One sequence's operands as strided rows: row `t` of q holds `queryHeads` vectors of `keyDim`
    /// starting at `q + t·qStride`, and so on. Strides let a cache or a fused buffer be read in place.
    struct Sequence<S: TensorScalar> {
        var q: UnsafePointer<S>, qStride: Int
        var k: UnsafePointer<S>, kStride: Int
        var v: UnsafePointer<S>, vStride: Int
        var out: UnsafeMutablePointer<S>, outStride: Int
        /// `[queries, Hq]`.
        var lse: UnsafeMutablePointer<S>
        var queries: Int
        /// Keys before the first query: the query rows are the last `queries` of the `keyOffset + queries` keys.
        var keyOffset: Int
        /// Flags for the `keyOffset + queries` keys, or nil when every key is valid.
        var keyValid: UnsafePointer<Bool>?

        var keys: Int { keyOffset + queries }
    }

    /// The keys query `t` of a sequence with `keys` keys sees: `lower...upper`.
    @inline(__always)
    static func visibleKeys(_ t: Int, of o: Sequence<some TensorScalar>, heads: Heads) -> (lower: Int, upper: Int) {
        guard heads.causal else { return (0, o.keys - 1) }
        let position = o.keyOffset + t
        return (heads.window.map { max(0, position - $0 + 1) } ?? 0, position)
    }

    // MARK: forward

    /// Attention for several sequences at once (the cores share the tasks of all of them).
    @_specialize(where S == Float)
    static func forward<S: TensorScalar>(_ sequences: [Sequence<S>], heads: Heads) {
        if let sequences = sequences as? [Sequence<Float>], AttentionKernel.handles(sequences, heads: heads) {
            return AttentionKernel.forward(sequences, heads: heads)
        }
        var tasks: [(sequence: Int, head: Int, block: Int)] = []
        for (index, sequence) in sequences.enumerated() {
            let blocks = (sequence.queries + blockRows - 1) / blockRows
            for head in 0..<heads.queryHeads { for block in 0..<blocks { tasks.append((index, head, block)) } }
        }
        // Longest blocks (latest queries) first, so the tail of the parallel loop is short.
        tasks.sort { $0.block > $1.block }
        parallelFor(tasks.count) { index in
            let task = tasks[index]
            forwardBlock(sequences[task.sequence], heads: heads, head: task.head, firstRow: task.block * blockRows)
        }
    }

    @_specialize(where S == Float)
    static func forwardBlock<S: TensorScalar>(_ o: Sequence<S>, heads: Heads, head: Int, firstRow: Int) {
        let rows = min(blockRows, o.queries - firstRow)
        let first = visibleKeys(firstRow, of: o, heads: heads).lower
        let span = visibleKeys(firstRow + rows - 1, of: o, heads: heads).upper + 1 - first
        let kvHead = head / heads.group
        let scores = UnsafeMutablePointer<S>.allocate(capacity: rows * span)
        defer { scores.deallocate() }
        S.gemm(transposeA: false, transposeB: true, m: rows, n: span, k: heads.keyDim, alpha: S(heads.scale),
               a: o.q + firstRow * o.qStride + head * heads.keyDim, lda: o.qStride,
               b: o.k + first * o.kStride + kvHead * heads.keyDim, ldb: o.kStride,
               beta: 0, c: scores, ldc: span, parallel: false)
        for r in 0..<rows {
            let (lower, upper) = visibleKeys(firstRow + r, of: o, heads: heads)
            let row = scores + r * span
            maskRow(row, span: span, first: first, lower: lower, upper: upper, keyValid: o.keyValid)
            o.lse[(firstRow + r) * heads.queryHeads + head] = softmaxRow(row, count: span)
        }
        S.gemm(transposeA: false, transposeB: false, m: rows, n: heads.valueDim, k: span, alpha: 1, a: scores, lda: span,
               b: o.v + first * o.vStride + kvHead * heads.valueDim, ldb: o.vStride,
               beta: 0, c: o.out + firstRow * o.outStride + head * heads.valueDim, ldc: o.outStride, parallel: false)
    }

    /// Sets the scores of keys outside `lower...upper` or masked out to −∞ (`row[i]` is key `first + i`).
    @inline(__always)
    static func maskRow<S: TensorScalar>(_ row: UnsafeMutablePointer<S>, span: Int, first: Int, lower: Int, upper: Int,
                                         keyValid: UnsafePointer<Bool>?) {
        for i in 0..<span where first + i < lower || first + i > upper { row[i] = -.infinity }
        if let keyValid {
            for i in 0..<span where !keyValid[first + i] { row[i] = -.infinity }
        }
    }

    /// Softmax of `row` in place; returns its log-sum-exp. An all-−∞ row becomes zeros (lse −∞); a row
    /// with a NaN or +∞ score becomes NaN, as the arithmetic would make it, never a plausible number.
    @_specialize(where S == Float)
    static func softmaxRow<S: TensorScalar>(_ row: UnsafeMutablePointer<S>, count: Int) -> S {
        let maximum = S.maximum(row, count: count)
        guard maximum.isFinite else {
            // The maximum skips NaN, so a NaN among −∞ (or a +∞) must still make the row NaN.
            let poisoned = maximum == .infinity || (0..<count).contains { row[$0].isNaN }
            row.update(repeating: poisoned ? .nan : 0, count: count)
            return poisoned ? .nan : -.infinity
        }
        // A NaN score makes the sum NaN, and so every probability and the log-sum-exp.
        let sum = S.exponentiateShifted(row, count: count, shift: maximum)
        let inverse = 1 / sum
        for i in 0..<count { row[i] *= inverse }
        return maximum + S.log(sum)
    }

    // MARK: backward

    /// Gradients for every sequence: `dq`, `dk`, `dv` have the layouts of `q`, `k`, `v` (`dk`/`dv` are
    /// accumulated, so they must start at zero).
    ///
    /// Per query head and block: `P = exp(scale·q·kᵀ − lse)`, `dv += Pᵀ·dO`, `dP = dO·vᵀ`,
    /// `dZ = P ∘ (dP − rowsum(dO ∘ O))`, `dq = scale·dZ·k`, `dk += scale·dZᵀ·q`. One task per
    /// (sequence, KV head), so the query heads sharing a KV head accumulate into its `dk`, `dv` in turn.
    @_specialize(where S == Float)
    static func backward<S: TensorScalar>(_ sequences: [Sequence<S>], heads: Heads, dOut: [UnsafePointer<S>],
                                          dq: [UnsafeMutablePointer<S>], dk: [UnsafeMutablePointer<S>],
                                          dv: [UnsafeMutablePointer<S>]) {
        let tasks = sequences.count * heads.keyValueHeads
        // Few tasks (one long sequence): let the matrix products use the cores instead.
        let innerParallel = tasks < coreCount
        parallelFor(tasks) { task in
            let (index, kvHead) = (task / heads.keyValueHeads, task % heads.keyValueHeads)
            let o = sequences[index]
            for head in (kvHead * heads.group)..<((kvHead + 1) * heads.group) {
                for firstRow in stride(from: 0, to: o.queries, by: blockRows) {
                    backwardBlock(o, heads: heads, head: head, firstRow: firstRow, dOut: dOut[index], dq: dq[index],
                                  dk: dk[index], dv: dv[index], parallel: innerParallel)
                }
            }
        }
    }

    @_specialize(where S == Float)
    static func backwardBlock<S: TensorScalar>(_ o: Sequence<S>, heads: Heads, head: Int, firstRow: Int,
                                               dOut: UnsafePointer<S>, dq: UnsafeMutablePointer<S>,
                                               dk: UnsafeMutablePointer<S>, dv: UnsafeMutablePointer<S>, parallel: Bool) {
        let (dkDim, dvDim, hq) = (heads.keyDim, heads.valueDim, heads.queryHeads)
        let rows = min(blockRows, o.queries - firstRow)
        let first = visibleKeys(firstRow, of: o, heads: heads).lower
        let span = visibleKeys(firstRow + rows - 1, of: o, heads: heads).upper + 1 - first
        let kvHead = head / heads.group
        let scale = S(heads.scale)
        let probabilities = UnsafeMutablePointer<S>.allocate(capacity: rows * span)
        let dScores = UnsafeMutablePointer<S>.allocate(capacity: rows * span)
        defer { probabilities.deallocate(); dScores.deallocate() }
        let qBlock = o.q + firstRow * o.qStride + head * dkDim
        let dOBlock = dOut + firstRow * o.outStride + head * dvDim
        let kSpan = o.k + first * o.kStride + kvHead * dkDim, vSpan = o.v + first * o.vStride + kvHead * dvDim
        S.gemm(transposeA: false, transposeB: true, m: rows, n: span, k: dkDim, alpha: scale, a: qBlock, lda: o.qStride,
               b: kSpan, ldb: o.kStride, beta: 0, c: probabilities, ldc: span, parallel: parallel)
        for r in 0..<rows {
            let (lower, upper) = visibleKeys(firstRow + r, of: o, heads: heads)
            let row = probabilities + r * span
            maskRow(row, span: span, first: first, lower: lower, upper: upper, keyValid: o.keyValid)
            let lse = o.lse[(firstRow + r) * hq + head]
            if lse == -.infinity {
                row.update(repeating: 0, count: span)
            } else {
                for i in 0..<span { row[i] -= lse }
                S.exponentiate(row, count: span)
            }
        }
        // dv += Pᵀ·dO and dP = dO·vᵀ.
        S.gemm(transposeA: true, transposeB: false, m: span, n: dvDim, k: rows, alpha: 1, a: probabilities, lda: span,
               b: dOBlock, ldb: o.outStride, beta: 1, c: dv + first * o.vStride + kvHead * dvDim, ldc: o.vStride,
               parallel: parallel)
        S.gemm(transposeA: false, transposeB: true, m: rows, n: span, k: dvDim, alpha: 1, a: dOBlock, lda: o.outStride,
               b: vSpan, ldb: o.vStride, beta: 0, c: dScores, ldc: span, parallel: parallel)
        for r in 0..<rows {
            let outRow = o.out + (firstRow + r) * o.outStride + head * dvDim, dORow = dOBlock + r * o.outStride
            var dot: S = 0
            for c in 0..<dvDim { dot += outRow[c] * dORow[c] }
            let p = probabilities + r * span, d = dScores + r * span
            for i in 0..<span { d[i] = p[i] * (d[i] - dot) }
        }
        S.gemm(transposeA: false, transposeB: false, m: rows, n: dkDim, k: span, alpha: scale, a: dScores, lda: span,
               b: kSpan, ldb: o.kStride, beta: 0, c: dq + firstRow * o.qStride + head * dkDim, ldc: o.qStride,
               parallel: parallel)
        S.gemm(transposeA: true, transposeB: false, m: span, n: dkDim, k: rows, alpha: scale, a: dScores, lda: span,
               b: qBlock, ldb: o.qStride, beta: 1, c: dk + first * o.kStride + kvHead * dkDim, ldc: o.kStride,
               parallel: parallel)
    }
}

extension Attention {
    /// What the backward pass needs besides the inputs: the output and the per-row log-sum-exp.
    public struct Saved<S: TensorScalar>: Sendable {
        public var out: Tensor<S>
        /// `[rows, Hq]`.
        public var lse: Tensor<S>
    }

    /// Attention over whole sequences of a layout (each sequence attends within itself).
    ///
    /// - Parameters:
    ///   - q: `[rows, Hq, dk]` (or `[rows, Hq·dk]`); k: `[rows, Hkv, dk]`; v: `[rows, Hkv, dv]`.
    /// - Returns: the output `[rows, Hq·dv]` (ready for the output projection) and `lse` `[rows, Hq]`.
    public static func forward<S: TensorScalar>(q: Tensor<S>, k: Tensor<S>, v: Tensor<S>, layout: SequenceLayout,
                                                heads: Heads) -> Saved<S> {
        let rows = layout.rows
        var out = Tensor<S>(zeros: [rows, heads.queryHeads * heads.valueDim])
        var lse = Tensor<S>(zeros: [rows, heads.queryHeads])
        withSequences(q: q, k: k, v: v, out: &out, lse: &lse, layout: layout, heads: heads) { forward($0, heads: heads) }
        return Saved(out: out, lse: lse)
    }

    /// `dq`, `dk`, `dv` for `dOut` `[rows, Hq·dv]`, from the inputs and what ``forward(q:k:v:layout:heads:)`` returned.
    public static func backward<S: TensorScalar>(dOut: Tensor<S>, q: Tensor<S>, k: Tensor<S>, v: Tensor<S>, saved: Saved<S>,
                                                 layout: SequenceLayout, heads: Heads)
        -> (dq: Tensor<S>, dk: Tensor<S>, dv: Tensor<S>) {
        var (out, lse) = (saved.out, saved.lse)
        var dq = Tensor<S>(zeros: q.shape), dk = Tensor<S>(zeros: k.shape), dv = Tensor<S>(zeros: v.shape)
        withSequences(q: q, k: k, v: v, out: &out, lse: &lse, layout: layout, heads: heads) { sequences in
            dOut.storage.withUnsafeBufferPointer { dO in dq.storage.withUnsafeMutableBufferPointer { dQ in
            dk.storage.withUnsafeMutableBufferPointer { dK in dv.storage.withUnsafeMutableBufferPointer { dV in
                let starts = layout.sequences.map(\.lowerBound)
                backward(sequences, heads: heads,
                         dOut: starts.map { dO.baseAddress! + $0 * heads.queryHeads * heads.valueDim },
                         dq: starts.map { dQ.baseAddress! + $0 * heads.queryHeads * heads.keyDim },
                         dk: starts.map { dK.baseAddress! + $0 * heads.keyValueHeads * heads.keyDim },
                         dv: starts.map { dV.baseAddress! + $0 * heads.keyValueHeads * heads.valueDim })
            }}}}
        }
        return (dq, dk, dv)
    }

    /// The per-sequence operands of dense `[rows, heads, dim]` tensors split by `layout`.
    private static func withSequences<S: TensorScalar>(q: Tensor<S>, k: Tensor<S>, v: Tensor<S>, out: inout Tensor<S>,
                                                       lse: inout Tensor<S>, layout: SequenceLayout, heads: Heads,
                                                       _ body: ([Sequence<S>]) -> Void) {
        guard layout.rows > 0 else { return }
        let (qStride, kStride) = (heads.queryHeads * heads.keyDim, heads.keyValueHeads * heads.keyDim)
        let (vStride, outStride) = (heads.keyValueHeads * heads.valueDim, heads.queryHeads * heads.valueDim)
        q.storage.withUnsafeBufferPointer { qs in k.storage.withUnsafeBufferPointer { ks in
        v.storage.withUnsafeBufferPointer { vs in out.storage.withUnsafeMutableBufferPointer { outs in
        lse.storage.withUnsafeMutableBufferPointer { lses in (layout.keyValid ?? []).withUnsafeBufferPointer { valid in
            body(layout.sequences.map { range in
                let start = range.lowerBound
                return Sequence(q: qs.baseAddress! + start * qStride, qStride: qStride,
                                k: ks.baseAddress! + start * kStride, kStride: kStride,
                                v: vs.baseAddress! + start * vStride, vStride: vStride,
                                out: outs.baseAddress! + start * outStride, outStride: outStride,
                                lse: lses.baseAddress! + start * heads.queryHeads, queries: range.count, keyOffset: 0,
                                keyValid: layout.keyValid == nil ? nil : valid.baseAddress! + start)
            })
        }}}}}}
    }
}
