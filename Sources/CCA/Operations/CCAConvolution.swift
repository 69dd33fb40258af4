/// The causal convolution stack that mixes CCA's q/k latents along the sequence, and its backward pass.
///
/// With two convolutions: conv A (kernel 2, depthwise, bias) then conv B (kernel 2, one d×d matrix per tap
/// for each of the `Hq + Hkv` heads, bias), with one left padding of two positions applied before A:
/// `A[i] = wA₀∘P[i] + wA₁∘P[i+1] + bA` over the padded input `P`, `out[t] = bB + G₀·A[t] + G₁·A[t+1]`.
/// With one, conv A alone with one position of padding; with none, the identity. The padding of each
/// sequence is its `history`: zeros at a sequence start, the chunk before's last pre-convolution rows
/// when decoding.
struct CCAConvolution<S: TensorScalar>: Sendable {
    let count: Int, channels: Int, headDim: Int
    /// conv A `[ct, 1, 2]` flattened (`2c` older tap, `2c + 1` newer) and its bias `[ct]`.
    let depthwiseWeight: [S], depthwiseBias: [S]
    /// conv B as two `[ct, d]` matrices (`[head][out][in]`), tap 0 (older input) first, and its bias `[ct]`.
    let groupedTaps: [S], groupedBias: [S]

    static var weightNames: (depthwise: String, depthwiseBias: String, grouped: String, groupedBias: String) {
        ("qkv_proj.conv_qk_depthwise.weight", "qkv_proj.conv_qk_depthwise.bias",
         "qkv_proj.conv_qk_grouped.weight", "qkv_proj.conv_qk_grouped.bias")
    }

    init(count: Int, channels: Int, headDim: Int, weights: [String: Tensor<S>]) {
        (self.count, self.channels, self.headDim) = (count, channels, headDim)
        let names = Self.weightNames
        depthwiseWeight = weights[names.depthwise]?.storage ?? []
        depthwiseBias = weights[names.depthwiseBias]?.storage ?? []
        groupedBias = weights[names.groupedBias]?.storage ?? []
        groupedTaps = weights[names.grouped].map { Self.splitTaps($0.storage, channels: channels, headDim: headDim) } ?? []
    }

    /// `[ct, d, 2]` → two `[ct, d]` matrices, tap 0 first.
    static func splitTaps(_ weight: [S], channels: Int, headDim: Int) -> [S] {
        var taps = [S](repeating: 0, count: 2 * channels * headDim)
        for index in 0..<(channels * headDim) {
            for tap in 0..<2 { taps[tap * channels * headDim + index] = weight[index * 2 + tap] }
        }
        return taps
    }

    /// What the backward pass reads: conv A's output and each sequence's history.
    struct Saved: Sendable {
        var depthwise: [S]
        /// Where each sequence's rows of `depthwise` start.
        var depthwiseStarts: [Int]
        /// Per sequence, the `[2, ct]` rows before it (older first).
        var histories: [[S]]
    }

    /// Rows conv A produces for a sequence of `length`: one more than the input when conv B follows.
    func depthwiseRows(_ length: Int) -> Int { length + count - 1 }

    /// The stack's output `[rows, ct]` for `input` `[rows, ct]`; `histories` holds each sequence's `[2, ct]`
    /// rows before it (nil: zeros).
    @_specialize(where S == Float)
    func forward(_ input: [S], layout: SequenceLayout, histories: [[S]]?) -> (output: [S], saved: Saved) {
        let ct = channels
        let histories = histories ?? layout.sequences.map { _ in [S](repeating: 0, count: 2 * ct) }
        var starts: [Int] = [], total = 0
        for range in layout.sequences {
            starts.append(total)
            total += count > 0 ? depthwiseRows(range.count) : 0
        }
        guard count > 0 else { return (input, Saved(depthwise: [], depthwiseStarts: starts, histories: histories)) }
        guard layout.rows > 0, ct > 0 else {
            let depthwise = [S](repeating: 0, count: total * ct)
            return (count == 2 ? [] : depthwise, Saved(depthwise: depthwise, depthwiseStarts: starts, histories: histories))
        }
        var depthwise = [S](repeating: 0, count: total * ct)
        input.withUnsafeBufferPointer { input in depthwise.withUnsafeMutableBufferPointer { depthwise in
        depthwiseWeight.withUnsafeBufferPointer { weight in depthwiseBias.withUnsafeBufferPointer { bias in
            let (input, depthwise, weight, bias) = (input.baseAddress!, depthwise.baseAddress!, weight.baseAddress!, bias.baseAddress!)
            for (index, range) in layout.sequences.enumerated() where !range.isEmpty {
                histories[index].withUnsafeBufferPointer { history in
                    // Row i of the sequence's padded input: the last `count` history rows, then its own rows.
                    func paddedRow(_ i: Int) -> UnsafePointer<S> {
                        i < count ? history.baseAddress! + (2 - count + i) * ct : input + (range.lowerBound + i - count) * ct
                    }
                    parallelRanges(depthwiseRows(range.count), costPerItem: 3 * ct) { rows in
                        for i in rows {
                            let (older, newer, out) = (paddedRow(i), paddedRow(i + 1), depthwise + (starts[index] + i) * ct)
                            for c in 0..<ct { out[c] = weight[2 * c] * older[c] + weight[2 * c + 1] * newer[c] + bias[c] }
                        }
                    }
                }
            }
        }}}}
        let saved = Saved(depthwise: depthwise, depthwiseStarts: starts, histories: histories)
        guard count == 2 else { return (depthwise, saved) }
        var output = [S](repeating: 0, count: layout.rows * ct)
        let (d, heads) = (headDim, ct / headDim)
        let sequences = layout.sequences
        depthwise.withUnsafeBufferPointer { a in groupedTaps.withUnsafeBufferPointer { taps in
        groupedBias.withUnsafeBufferPointer { bias in output.withUnsafeMutableBufferPointer { out in
            let (a, taps, bias, out) = (a.baseAddress!, taps.baseAddress!, bias.baseAddress!, out.baseAddress!)
            parallelFor(sequences.count * heads) { task in
                let (index, g) = (task / heads, task % heads)
                let range = sequences[index]
                guard !range.isEmpty else { return }
                // The head's columns start at its bias (inside the task, so no serial pass fills them).
                let columns = out + range.lowerBound * ct + g * d
                for row in 0..<range.count { (columns + row * ct).update(from: bias + g * d, count: d) }
                for tap in 0..<2 {
                    S.gemm(transposeA: false, transposeB: true, m: range.count, n: d, k: d, alpha: 1,
                           a: a + (starts[index] + tap) * ct + g * d, lda: ct, b: taps + tap * ct * d + g * d * d, ldb: d,
                           beta: 1, c: columns, ldc: ct, parallel: false)
                }
            }
        }}}}
        return (output, saved)
    }

    /// Element `c` of row `i` of a sequence's padded input: the last `count` history rows, then its rows.
    @inline(__always)
    func padded(_ input: [S], _ history: [S], _ range: Range<Int>, row i: Int, channel c: Int) -> S {
        i < count ? history[(2 - count + i) * channels + c] : input[(range.lowerBound + i - count) * channels + c]
    }

    /// `dInput` `[rows, ct]` and the convolution weight gradients under their interchange names.
    @_specialize(where S == Float)
    func backward(_ dOut: [S], input: [S], layout: SequenceLayout, saved: Saved) -> (dInput: [S], grads: [String: Tensor<S>]) {
        guard count > 0 else { return (dOut, [:]) }
        let (ct, d, names) = (channels, headDim, Self.weightNames)
        let sequences = layout.sequences, starts = saved.depthwiseStarts
        var grads: [String: Tensor<S>] = [:]
        var dDepthwise = dOut
        if count == 2 {
            dDepthwise = [S](repeating: 0, count: saved.depthwise.count)
            var dTaps = [S](repeating: 0, count: 2 * ct * d), dBias = [S](repeating: 0, count: ct)
            for row in 0..<layout.rows { for c in 0..<ct { dBias[c] += dOut[row * ct + c] } }
            dOut.withUnsafeBufferPointer { dO in saved.depthwise.withUnsafeBufferPointer { a in
            groupedTaps.withUnsafeBufferPointer { taps in dDepthwise.withUnsafeMutableBufferPointer { dA in
            dTaps.withUnsafeMutableBufferPointer { dTaps in
                let (dO, a, taps, dA, dTaps) = (dO.baseAddress!, a.baseAddress!, taps.baseAddress!, dA.baseAddress!, dTaps.baseAddress!)
                // One task per head: its tap matrices and its columns of dA are its own.
                parallelFor(ct / d) { g in
                    for (index, range) in sequences.enumerated() where !range.isEmpty {
                        for tap in 0..<2 {
                            let dOg = dO + range.lowerBound * ct + g * d, aRows = (starts[index] + tap) * ct + g * d
                            S.gemm(transposeA: false, transposeB: false, m: range.count, n: d, k: d, alpha: 1, a: dOg, lda: ct,
                                   b: taps + tap * ct * d + g * d * d, ldb: d, beta: 1, c: dA + aRows, ldc: ct, parallel: false)
                            S.gemm(transposeA: true, transposeB: false, m: d, n: d, k: range.count, alpha: 1, a: dOg, lda: ct,
                                   b: a + aRows, ldb: ct, beta: 1, c: dTaps + tap * ct * d + g * d * d, ldc: d, parallel: false)
                        }
                    }
                }
            }}}}}
            var dWeight = Tensor<S>(zeros: [ct, d, 2])
            for index in 0..<(ct * d) { for tap in 0..<2 { dWeight.storage[index * 2 + tap] = dTaps[tap * ct * d + index] } }
            grads[names.grouped] = dWeight
            grads[names.groupedBias] = Tensor(checked: [ct], dBias)
        }
        // Conv A: each output row i reads padded rows i (older tap) and i + 1 (newer tap).
        var dInput = [S](repeating: 0, count: layout.rows * ct)
        var dWeight = Tensor<S>(zeros: [ct, 1, 2]), dBias = [S](repeating: 0, count: ct)
        for (index, range) in sequences.enumerated() where !range.isEmpty {
            for i in 0..<depthwiseRows(range.count) {
                for c in 0..<ct {
                    let gradient = dDepthwise[(starts[index] + i) * ct + c]
                    dBias[c] += gradient
                    for tap in 0..<2 {
                        let source = i + tap
                        dWeight.storage[2 * c + tap] += gradient * padded(input, saved.histories[index], range, row: source, channel: c)
                        if source >= count {
                            dInput[(range.lowerBound + source - count) * ct + c] += depthwiseWeight[2 * c + tap] * gradient
                        }
                    }
                }
            }
        }
        grads[names.depthwise] = dWeight
        grads[names.depthwiseBias] = Tensor(checked: [ct], dBias)
        return (dInput, grads)
    }
}
