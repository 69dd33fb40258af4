/// CCA's parameter-free QK-mean: the skip path from the pre-convolution latents to q and k, and its
/// backward pass.
///
/// With `g` query heads per KV head: `mq[h] = (q0[h] + k0[h/g]) / 2` and `mk[j] = (mean of q0 over the g
/// heads of group j + k0[j]) / 2`; q = qc + mq, k = kc + mk. Rows hold `[q0 | k0]` (`Hq·d + Hkv·d`).
enum QKMean {
    /// `q` `[rows, Hq·d]` and `k` `[rows, Hkv·d]`: the convolved halves of `mixed`, plus the means of
    /// `latents` when `enabled`.
    @_specialize(where S == Float)
    static func forward<S: TensorScalar>(mixed: [S], latents: [S], rows: Int, queryHeads: Int, keyValueHeads: Int,
                                         headDim d: Int, enabled: Bool) -> (q: [S], k: [S]) {
        let (eq, ek, group) = (queryHeads * d, keyValueHeads * d, queryHeads / keyValueHeads)
        let ct = eq + ek
        guard rows > 0, ct > 0 else { return ([S](repeating: 0, count: rows * eq), [S](repeating: 0, count: rows * ek)) }
        var k: [S] = []
        // Every element of q and k is written below.
        let q = [S](count: rows * eq) { q in k = [S](count: rows * ek) { k in
        mixed.withUnsafeBufferPointer { mixed in latents.withUnsafeBufferPointer { latents in
            let (mixed, latents, q, k) = (mixed.baseAddress!, latents.baseAddress!, q.baseAddress!, k.baseAddress!)
            parallelRanges(rows, costPerItem: 2 * ct) { range in
                for row in range {
                    let (pre, queries, keys) = (row * ct, q + row * eq, k + row * ek)
                    for h in 0..<queryHeads {
                        let (query, key) = (pre + h * d, pre + eq + (h / group) * d)
                        for c in 0..<d {
                            let mean = enabled ? (latents[query + c] + latents[key + c]) / 2 : 0
                            queries[h * d + c] = mixed[query + c] + mean
                        }
                    }
                    for j in 0..<keyValueHeads {
                        let key = pre + eq + j * d
                        for c in 0..<d {
                            var mean: S = 0
                            if enabled {
                                for h in (j * group)..<((j + 1) * group) { mean += latents[pre + h * d + c] }
                                mean = (mean / S(group) + latents[key + c]) / 2
                            }
                            keys[j * d + c] = mixed[key + c] + mean
                        }
                    }
                }
            }
        }}}}
        return (q, k)
    }

    /// `dMixed` `[rows, ct]` (the gradients of q and k side by side) and the mean path's share of `dLatents`.
    @_specialize(where S == Float)
    static func backward<S: TensorScalar>(dq: [S], dk: [S], rows: Int, queryHeads: Int, keyValueHeads: Int,
                                          headDim d: Int, enabled: Bool) -> (dMixed: [S], dLatents: [S]) {
        let (eq, ek, group) = (queryHeads * d, keyValueHeads * d, queryHeads / keyValueHeads)
        let ct = eq + ek
        var dMixed = [S](repeating: 0, count: rows * ct), dLatents = [S](repeating: 0, count: enabled ? rows * ct : 0)
        for row in 0..<rows {
            for c in 0..<eq { dMixed[row * ct + c] = dq[row * eq + c] }
            for c in 0..<ek { dMixed[row * ct + eq + c] = dk[row * ek + c] }
            guard enabled else { continue }
            let pre = row * ct
            for h in 0..<queryHeads {
                for c in 0..<d {
                    let half = dq[row * eq + h * d + c] / 2
                    dLatents[pre + h * d + c] += half + dk[row * ek + (h / group) * d + c] / (2 * S(group))
                    dLatents[pre + eq + (h / group) * d + c] += half
                }
            }
            for c in 0..<ek { dLatents[pre + eq + c] += dk[row * ek + c] / 2 }
        }
        return (dMixed, dLatents)
    }
}
