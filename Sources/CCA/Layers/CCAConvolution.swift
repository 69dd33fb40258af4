/// The causal convolution stack that mixes CCA's q/k latents along the sequence.
///
/// With two convolutions: conv A (kernel 2, depthwise, bias) then conv B (kernel 2, one d×d matrix per
/// tap for each of the `Hq + Hkv` heads, bias), with one left padding of two positions applied before A.
/// With one, conv A alone with one position of padding; with none, the identity. The padding is the
/// `history`: zeros at a sequence start, the previous chunk's last pre-convolution rows when decoding.
struct CCAConvolution: Sendable {
    let count: Int
    let channels: Int, headDim: Int
    /// conv A `[ct, 1, 2]` and bias `[ct]`.
    let depthwiseWeight: Tensor?, depthwiseBias: Tensor?
    /// conv B `[ct, d, 2]` and bias `[ct]`.
    let groupedWeight: Tensor?, groupedBias: Tensor?

    /// Positions of history the stack reads before each chunk.
    var historyLength: Int { count }

    /// Applies the stack to `rows` rows of `[ct]` pre-convolution values, preceded by
    /// `historyLength` rows of `history`; writes `rows × ct` values to `output`.
    func apply(_ input: UnsafePointer<Float>, rows: Int, history: UnsafePointer<Float>,
               output: UnsafeMutablePointer<Float>) {
        let ct = channels
        guard count > 0, let depthwiseWeight, let depthwiseBias else {
            output.update(from: input, count: rows * ct)
            return
        }
        // padded[i] = history row i for i < pad, input row i - pad after.
        let pad = historyLength
        func padded(_ i: Int) -> UnsafePointer<Float> { i < pad ? history + i * ct : input + (i - pad) * ct }
        let depthwiseRows = rows + pad - 1
        let depthwise = count == 1 ? output : UnsafeMutablePointer<Float>.allocate(capacity: depthwiseRows * ct)
        defer { if count == 2 { depthwise.deallocate() } }
        depthwiseWeight.storage.withUnsafeBufferPointer { w in
            depthwiseBias.storage.withUnsafeBufferPointer { bias in
                for i in 0..<depthwiseRows {
                    let older = padded(i), newer = padded(i + 1), out = depthwise + i * ct
                    for c in 0..<ct { out[c] = w[2 * c] * older[c] + w[2 * c + 1] * newer[c] + bias[c] }
                }
            }
        }
        guard count == 2, let groupedWeight, let groupedBias else { return }
        let d = headDim
        let taps = Self.splitTaps(groupedWeight, channels: ct, headDim: d)
        groupedBias.storage.withUnsafeBufferPointer { bias in
            for t in 0..<rows {
                output.advanced(by: t * ct).update(from: bias.baseAddress!, count: ct)
            }
        }
        taps.withUnsafeBufferPointer { tapBuffer in
            let groups = ct / d
            parallelFor(groups) { g in
                for tap in 0..<2 {
                    MatrixMultiply.gemm(transposeB: true, m: rows, n: d, k: d,
                                        a: depthwise + tap * ct + g * d, lda: ct,
                                        b: tapBuffer.baseAddress! + tap * ct * d + g * d * d, ldb: d,
                                        beta: 1, c: output + g * d, ldc: ct, parallel: false)
                }
            }
        }
    }

    /// `[ct, d, 2]` → two `[ct, d]` matrices, tap 0 (older input) first.
    static func splitTaps(_ weight: Tensor, channels: Int, headDim: Int) -> [Float] {
        var taps = [Float](repeating: 0, count: 2 * channels * headDim)
        for o in 0..<channels {
            for i in 0..<headDim {
                for tap in 0..<2 { taps[tap * channels * headDim + o * headDim + i] = weight.storage[(o * headDim + i) * 2 + tap] }
            }
        }
        return taps
    }
}
