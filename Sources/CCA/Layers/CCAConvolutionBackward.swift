/// Training form of ``CCAConvolution``: the causal conv stack over whole sequences (zero history), keeping
/// conv A's output for the backward pass, and that backward pass.
///
/// Layout: rows of `ct = eq + ek` channels, `[B, S, ct]`. Conv A: `A[i] = wA0∘P[i] + wA1∘P[i+1] + bA`
/// over the left-padded input `P`; conv B: `out[t] = bB + G0·A[t] + G1·A[t+1]` per head.
struct CCAConvolutionTraining<S: TrainingScalar> {
    let count: Int, channels: Int, headDim: Int
    /// conv A `[ct, 1, 2]` flattened (`2c` older tap, `2c + 1` newer), and bias `[ct]`.
    let depthwiseWeight: [S], depthwiseBias: [S]
    /// conv B as two `[ct, d]` matrices, tap 0 (older input) first, and bias `[ct]`.
    let groupedTaps: [S], groupedBias: [S]

    init(count: Int, channels: Int, headDim: Int, weights: [String: TrainingTensor<S>]) {
        (self.count, self.channels, self.headDim) = (count, channels, headDim)
        depthwiseWeight = weights["qkv_proj.conv_qk_depthwise.weight"]?.storage ?? []
        depthwiseBias = weights["qkv_proj.conv_qk_depthwise.bias"]?.storage ?? []
        groupedBias = weights["qkv_proj.conv_qk_grouped.bias"]?.storage ?? []
        var taps = [S](repeating: 0, count: 2 * channels * headDim)
        if let grouped = weights["qkv_proj.conv_qk_grouped.weight"] {
            for index in 0..<(channels * headDim) {
                for tap in 0..<2 { taps[tap * channels * headDim + index] = grouped.storage[index * 2 + tap] }
            }
        }
        groupedTaps = count == 2 ? taps : []
    }

    /// Rows conv A produces per sequence: one more than the input when conv B follows.
    func depthwiseRows(_ length: Int) -> Int { length + count - 1 }

    /// The element of the left-padded input: zero for the `count` history rows.
    @inline(__always)
    func padded(_ input: [S], sequenceStart: Int, row i: Int, channel c: Int) -> S {
        i < count ? 0 : input[sequenceStart + (i - count) * channels + c]
    }

    /// The stack's output `[B, S, ct]` and conv A's output `[B, S + count − 1, ct]` (empty without convs).
    func forward(_ input: [S], batch: Int, length: Int) -> (output: [S], depthwise: [S]) {
        guard count > 0 else { return (input, []) }
        let ct = channels, rowsA = depthwiseRows(length)
        var depthwise = [S](repeating: 0, count: batch * rowsA * ct)
        for b in 0..<batch {
            for i in 0..<rowsA {
                for c in 0..<ct {
                    let older = padded(input, sequenceStart: b * length * ct, row: i, channel: c)
                    let newer = padded(input, sequenceStart: b * length * ct, row: i + 1, channel: c)
                    depthwise[(b * rowsA + i) * ct + c] = depthwiseWeight[2 * c] * older + depthwiseWeight[2 * c + 1] * newer
                        + depthwiseBias[c]
                }
            }
        }
        guard count == 2 else { return (depthwise, []) }
        var output = [S](repeating: 0, count: batch * length * ct)
        for row in 0..<(batch * length) { for c in 0..<ct { output[row * ct + c] = groupedBias[c] } }
        let d = headDim
        depthwise.withUnsafeBufferPointer { a in groupedTaps.withUnsafeBufferPointer { taps in
        output.withUnsafeMutableBufferPointer { out in
            let (a, taps, out) = (a.baseAddress!, taps.baseAddress!, out.baseAddress!)
            parallelFor(batch * (ct / d)) { task in
                let (b, g) = (task / (ct / d), task % (ct / d))
                for tap in 0..<2 {
                    S.gemm(transposeA: false, transposeB: true, m: length, n: d, k: d, alpha: 1,
                           a: a + (b * rowsA + tap) * ct + g * d, lda: ct, b: taps + tap * ct * d + g * d * d, ldb: d,
                           beta: 1, c: out + b * length * ct + g * d, ldc: ct, parallel: false)
                }
            }
        }}}
        return (output, depthwise)
    }

    /// `dInput` `[B, S, ct]` and the conv weight gradients under their interchange names.
    func backward(_ dOut: [S], input: [S], depthwise: [S], batch: Int, length: Int)
        -> (dInput: [S], grads: [String: TrainingTensor<S>]) {
        guard count > 0 else { return (dOut, [:]) }
        let (ct, d, rowsA) = (channels, headDim, depthwiseRows(length))
        var grads: [String: TrainingTensor<S>] = [:]
        var dDepthwise = dOut
        if count == 2 {
            dDepthwise = [S](repeating: 0, count: batch * rowsA * ct)
            var dTaps = [S](repeating: 0, count: 2 * ct * d), dBias = [S](repeating: 0, count: ct)
            for row in 0..<(batch * length) { for c in 0..<ct { dBias[c] += dOut[row * ct + c] } }
            dOut.withUnsafeBufferPointer { dO in depthwise.withUnsafeBufferPointer { a in
            groupedTaps.withUnsafeBufferPointer { taps in dDepthwise.withUnsafeMutableBufferPointer { dA in
            dTaps.withUnsafeMutableBufferPointer { dTaps in
                let (dO, a, taps, dA, dTaps) = (dO.baseAddress!, a.baseAddress!, taps.baseAddress!, dA.baseAddress!, dTaps.baseAddress!)
                // One task per head: its tap matrices and its columns of dA are its own.
                parallelFor(ct / d) { g in
                    for b in 0..<batch {
                        for tap in 0..<2 {
                            let dOg = dO + b * length * ct + g * d, rowsAt = (b * rowsA + tap) * ct + g * d
                            S.gemm(transposeA: false, transposeB: false, m: length, n: d, k: d, alpha: 1, a: dOg, lda: ct,
                                   b: taps + tap * ct * d + g * d * d, ldb: d, beta: 1, c: dA + rowsAt, ldc: ct, parallel: false)
                            S.gemm(transposeA: true, transposeB: false, m: d, n: d, k: length, alpha: 1, a: dOg, lda: ct,
                                   b: a + rowsAt, ldb: ct, beta: 1, c: dTaps + tap * ct * d + g * d * d, ldc: d, parallel: false)
                        }
                    }
                }
            }}}}}
            var dWeight = TrainingTensor<S>(zeros: [ct, d, 2])
            for index in 0..<(ct * d) { for tap in 0..<2 { dWeight.storage[index * 2 + tap] = dTaps[tap * ct * d + index] } }
            grads["qkv_proj.conv_qk_grouped.weight"] = dWeight
            grads["qkv_proj.conv_qk_grouped.bias"] = TrainingTensor(shape: [ct], storage: dBias)
        }
        // Conv A: each output row i reads padded rows i (older tap) and i + 1 (newer tap).
        var dInput = [S](repeating: 0, count: batch * length * ct)
        var dWeight = TrainingTensor<S>(zeros: [ct, 1, 2]), dBias = [S](repeating: 0, count: ct)
        for b in 0..<batch {
            for i in 0..<rowsA {
                for c in 0..<ct {
                    let gradient = dDepthwise[(b * rowsA + i) * ct + c]
                    dBias[c] += gradient
                    for tap in 0..<2 {
                        let source = i + tap
                        dWeight.storage[2 * c + tap] += gradient * padded(input, sequenceStart: b * length * ct, row: source, channel: c)
                        if source >= count { dInput[(b * length + source - count) * ct + c] += depthwiseWeight[2 * c + tap] * gradient }
                    }
                }
            }
        }
        grads["qkv_proj.conv_qk_depthwise.weight"] = dWeight
        grads["qkv_proj.conv_qk_depthwise.bias"] = TrainingTensor(shape: [ct], storage: dBias)
        return (dInput, grads)
    }
}
