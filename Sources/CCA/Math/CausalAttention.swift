import RealModule

/// Causal softmax attention with grouped key/value heads, the core every layer shares.
///
/// `out[b,t,h] = Σ_s softmax_s(scale · q[b,t,h]·k[b,s,h/g]) · v[b,s,h/g]` over keys `s ≤ t + queryOffset`
/// that the key mask keeps; `g = queryHeads / keyValueHeads`. A query row with no visible key gets zeros.
///
/// Work is split into tasks of (batch, query head, block of `blockRows` queries); each task forms its
/// score block with one matrix product, applies the causal mask and softmax in place, and multiplies by V.
public enum CausalAttention {
    static let blockRows = 64

    /// - Parameters:
    ///   - q: `[B, S, Hq, dk]`; k: `[B, T, Hkv, dk]`; v: `[B, T, Hkv, dv]` with `T = S + queryOffset`.
    ///   - keyValid: optional `[B, T]` flags; keys with `false` are never attended.
    /// - Returns: `[B, S, Hq, dv]`.
    public static func forward(q: Tensor, k: Tensor, v: Tensor, scale: Float, queryOffset: Int = 0,
                               keyValid: [Bool]? = nil) -> Tensor {
        let (batch, length, queryHeads, keyDim) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (keyLength, keyValueHeads, valueDim) = (k.shape[1], k.shape[2], v.shape[3])
        precondition(keyLength == length + queryOffset, "keys must cover the queries' positions")
        let group = queryHeads / keyValueHeads
        let blocks = (length + blockRows - 1) / blockRows
        var out = Tensor(zeros: [batch, length, queryHeads, valueDim])
        q.storage.withUnsafeBufferPointer { qBuffer in
        k.storage.withUnsafeBufferPointer { kBuffer in
        v.storage.withUnsafeBufferPointer { vBuffer in
        out.storage.withUnsafeMutableBufferPointer { outBuffer in
            let (qBase, kBase, vBase, outBase) =
                (qBuffer.baseAddress!, kBuffer.baseAddress!, vBuffer.baseAddress!, outBuffer.baseAddress!)
            parallelFor(batch * queryHeads * blocks) { task in
                let block = task % blocks, head = (task / blocks) % queryHeads, b = task / (blocks * queryHeads)
                let firstRow = block * blockRows, rows = min(blockRows, length - firstRow)
                let visibleKeys = firstRow + rows + queryOffset
                let kvHead = head / group
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * visibleKeys)
                defer { scores.deallocate() }
                let qRows = qBase + ((b * length + firstRow) * queryHeads + head) * keyDim
                let kRows = kBase + (b * keyLength * keyValueHeads + kvHead) * keyDim
                let vRows = vBase + (b * keyLength * keyValueHeads + kvHead) * valueDim
                MatrixMultiply.gemm(transposeB: true, m: rows, n: visibleKeys, k: keyDim, alpha: scale,
                                    a: qRows, lda: queryHeads * keyDim, b: kRows, ldb: keyValueHeads * keyDim,
                                    c: scores, ldc: visibleKeys, parallel: false)
                for r in 0..<rows {
                    let limit = firstRow + r + queryOffset
                    let row = scores + r * visibleKeys
                    softmaxRow(row, count: visibleKeys, visibleThrough: limit,
                               keyValid: keyValid.map { ($0, b * keyLength) })
                }
                MatrixMultiply.gemm(m: rows, n: valueDim, k: visibleKeys, a: scores, lda: visibleKeys,
                                    b: vRows, ldb: keyValueHeads * valueDim, beta: 0,
                                    c: outBase + ((b * length + firstRow) * queryHeads + head) * valueDim,
                                    ldc: queryHeads * valueDim, parallel: false)
            }
        }}}}
        return out
    }

    /// In-place softmax over `row[0...visibleThrough]` (and kept keys); every other entry becomes 0.
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, visibleThrough limit: Int,
                           keyValid: ([Bool], Int)?) {
        var maximum = -Float.infinity
        for s in 0...limit where keyValid.map({ $0.0[$0.1 + s] }) ?? true { maximum = max(maximum, row[s]) }
        var sum: Float = 0
        if maximum == -Float.infinity {
            for s in 0..<count { row[s] = 0 }
            return
        }
        for s in 0..<count {
            let visible = s <= limit && (keyValid.map { $0.0[$0.1 + s] } ?? true)
            let weight = visible ? Float.exp(row[s] - maximum) : 0
            row[s] = weight
            sum += weight
        }
        let inverse = 1 / sum
        for s in 0...limit { row[s] *= inverse }
    }
}
