import RealModule

/// Causal softmax attention over whole sequences for training: the forward pass keeps the attention
/// probabilities, and the backward pass turns `dOut` into `dq`, `dk`, `dv`.
///
/// Same math as ``CausalAttention`` without masks or offsets: query `t` sees keys `s ≤ t`, query head
/// `h` uses key/value head `h / g`. The probabilities take `B·Hq·S²` scalars, fine at training lengths.
struct CausalAttentionTraining {
    let batch: Int, length: Int
    let queryHeads: Int, keyValueHeads: Int
    let keyDim: Int, valueDim: Int

    var group: Int { queryHeads / keyValueHeads }

    /// - Parameters: q `[B,S,Hq,dk]`, k `[B,S,Hkv,dk]`, v `[B,S,Hkv,dv]` as flat arrays.
    /// - Returns: the output `[B,S,Hq,dv]` and the probabilities `[B,Hq,S,S]` (zero above the diagonal).
    func forward<S: TrainingScalar>(q: [S], k: [S], v: [S], scale: S) -> (out: [S], probabilities: [S]) {
        let (n, hq, hkv, dk, dv) = (length, queryHeads, keyValueHeads, keyDim, valueDim)
        var out = [S](repeating: 0, count: batch * n * hq * dv)
        var probabilities = [S](repeating: 0, count: batch * hq * n * n)
        q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
        out.withUnsafeMutableBufferPointer { out in probabilities.withUnsafeMutableBufferPointer { p in
            let (q, k, v, out, p) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, out.baseAddress!, p.baseAddress!)
            parallelFor(batch * hq) { task in
                let (b, h) = (task / hq, task % hq), j = h / group
                let scores = p + task * n * n
                S.gemm(transposeA: false, transposeB: true, m: n, n: n, k: dk, alpha: scale,
                       a: q + (b * n * hq + h) * dk, lda: hq * dk, b: k + (b * n * hkv + j) * dk, ldb: hkv * dk,
                       beta: 0, c: scores, ldc: n, parallel: false)
                for t in 0..<n { Self.causalSoftmax(scores + t * n, visible: t + 1, count: n) }
                S.gemm(transposeA: false, transposeB: false, m: n, n: dv, k: n, alpha: 1,
                       a: scores, lda: n, b: v + (b * n * hkv + j) * dv, ldb: hkv * dv,
                       beta: 0, c: out + (b * n * hq + h) * dv, ldc: hq * dv, parallel: false)
            }
        }}}}}
        return (out, probabilities)
    }

    /// Softmax over the first `visible` entries; the rest of the row becomes 0.
    static func causalSoftmax<S: TrainingScalar>(_ row: UnsafeMutablePointer<S>, visible: Int, count: Int) {
        var maximum = -S.infinity
        for s in 0..<visible { maximum = max(maximum, row[s]) }
        for s in 0..<visible { row[s] -= maximum }
        S.exponentiate(row, count: visible)
        var sum: S = 0
        for s in 0..<visible { sum += row[s] }
        for s in 0..<visible { row[s] /= sum }
        for s in visible..<count { row[s] = 0 }
    }

    /// Gradients of q, k, v for `dOut` `[B,S,Hq,dv]`.
    ///
    /// Per head: `dP = dO·vᵀ`, `dv += Pᵀ·dO`, `dZ = P ∘ (dP − rowsum(P ∘ dP))`, `dq = scale·dZ·k`,
    /// `dk += scale·dZᵀ·q`. One task per (batch, KV head) so the heads sharing a KV head accumulate
    /// into `dk`, `dv` without races.
    func backward<S: TrainingScalar>(dOut: [S], q: [S], k: [S], v: [S], probabilities: [S], scale: S)
        -> (dq: [S], dk: [S], dv: [S]) {
        let (n, hq, hkv, dk, dv) = (length, queryHeads, keyValueHeads, keyDim, valueDim)
        var dq = [S](repeating: 0, count: q.count), dKey = [S](repeating: 0, count: k.count)
        var dValue = [S](repeating: 0, count: v.count)
        dOut.withUnsafeBufferPointer { dO in q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in
        v.withUnsafeBufferPointer { v in probabilities.withUnsafeBufferPointer { p in
        dq.withUnsafeMutableBufferPointer { dq in dKey.withUnsafeMutableBufferPointer { dKey in
        dValue.withUnsafeMutableBufferPointer { dValue in
            let (dO, q, k, v, p) = (dO.baseAddress!, q.baseAddress!, k.baseAddress!, v.baseAddress!, p.baseAddress!)
            let (dq, dKey, dValue) = (dq.baseAddress!, dKey.baseAddress!, dValue.baseAddress!)
            parallelFor(batch * hkv) { task in
                let (b, j) = (task / hkv, task % hkv)
                let dScores = UnsafeMutablePointer<S>.allocate(capacity: n * n)
                defer { dScores.deallocate() }
                let kj = k + (b * n * hkv + j) * dk, vj = v + (b * n * hkv + j) * dv
                let dkj = dKey + (b * n * hkv + j) * dk, dvj = dValue + (b * n * hkv + j) * dv
                for h in (j * group)..<((j + 1) * group) {
                    let probs = p + (b * hq + h) * n * n
                    let dOh = dO + (b * n * hq + h) * dv, qh = q + (b * n * hq + h) * dk
                    S.gemm(transposeA: false, transposeB: true, m: n, n: n, k: dv, alpha: 1, a: dOh, lda: hq * dv,
                           b: vj, ldb: hkv * dv, beta: 0, c: dScores, ldc: n, parallel: false)
                    S.gemm(transposeA: true, transposeB: false, m: n, n: dv, k: n, alpha: 1, a: probs, lda: n,
                           b: dOh, ldb: hq * dv, beta: 1, c: dvj, ldc: hkv * dv, parallel: false)
                    for t in 0..<n {
                        let row = dScores + t * n, pRow = probs + t * n
                        var dot: S = 0
                        for s in 0...t { dot += pRow[s] * row[s] }
                        for s in 0...t { row[s] = pRow[s] * (row[s] - dot) }
                        for s in (t + 1)..<n { row[s] = 0 }
                    }
                    S.gemm(transposeA: false, transposeB: false, m: n, n: dk, k: n, alpha: scale, a: dScores, lda: n,
                           b: kj, ldb: hkv * dk, beta: 0, c: dq + (b * n * hq + h) * dk, ldc: hq * dk, parallel: false)
                    S.gemm(transposeA: true, transposeB: false, m: n, n: dk, k: n, alpha: scale, a: dScores, lda: n,
                           b: qh, ldb: hq * dk, beta: 1, c: dkj, ldc: hkv * dk, parallel: false)
                }
            }
        }}}}}}}}
        return (dq, dKey, dValue)
    }
}
