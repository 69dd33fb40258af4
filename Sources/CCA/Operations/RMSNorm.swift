/// RMSNorm `y = x / sqrt(mean(x²) + eps) · w` over rows of `w.count`, and its backward pass.
public enum RMSNorm {
    /// `y` and each row's inverse RMS `[rows]`, which the backward pass reads.
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ x: Tensor<S>, weight: Tensor<S>, epsilon: S) -> (y: Tensor<S>, inverseRMS: [S]) {
        let width = weight.count, rows = x.count / width
        var y = x
        var inverse = [S](repeating: 0, count: rows)
        x.storage.withUnsafeBufferPointer { xs in y.storage.withUnsafeMutableBufferPointer { ys in
        weight.storage.withUnsafeBufferPointer { w in inverse.withUnsafeMutableBufferPointer { inv in
            let (xs, ys, w, inv) = (xs.baseAddress!, ys.baseAddress!, w.baseAddress!, inv.baseAddress!)
            let chunks = min(rows, coreCount * 4)
            parallelFor(chunks) { chunk in
                for r in stride(from: chunk, to: rows, by: chunks) {
                    var sumOfSquares: S = 0
                    for i in 0..<width { sumOfSquares += xs[r * width + i] * xs[r * width + i] }
                    inv[r] = 1 / (sumOfSquares / S(width) + epsilon).squareRoot()
                    for i in 0..<width { ys[r * width + i] = xs[r * width + i] * inv[r] * w[i] }
                }
            }
        }}}}
        return (y, inverse)
    }

    /// `dx` and `dw` for `dy`. With `g = dy ∘ w` and `r` the inverse RMS: `dx = r·g − r³·x·(g·x)/width`,
    /// `dw = Σ_rows dy ∘ x ∘ r`.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dy: Tensor<S>, x: Tensor<S>, weight: Tensor<S>, inverseRMS: [S])
        -> (dx: Tensor<S>, dWeight: Tensor<S>) {
        backward(dy, x: x, weight: weight, inverseRMS: inverseRMS, adding: Tensor<S>(zeros: x.shape))
    }

    /// ``backward(_:x:weight:inverseRMS:)`` with `dx` added to `carried` (the shape of `x`) in the same pass:
    /// the gradient a residual path carries past the norm, as the backward pass of a pre-norm block adds it.
    /// Returns `carried + dx` and `dw`.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dy: Tensor<S>, x: Tensor<S>, weight: Tensor<S>, inverseRMS: [S],
                                                 adding carried: Tensor<S>) -> (dx: Tensor<S>, dWeight: Tensor<S>) {
        let width = weight.count, rows = inverseRMS.count
        precondition(carried.count == x.count, "RMSNorm.backward: a carried gradient \(carried.shape) for x \(x.shape)")
        var dx = carried, dWeight = Tensor<S>(zeros: weight.shape)
        for r in 0..<rows {
            let inverse = inverseRMS[r], base = r * width
            var dot: S = 0
            for i in 0..<width { dot += dy.storage[base + i] * weight.storage[i] * x.storage[base + i] }
            let correction = inverse * inverse * inverse * dot / S(width)
            for i in 0..<width {
                let value = x.storage[base + i]
                dx.storage[base + i] += inverse * dy.storage[base + i] * weight.storage[i] - correction * value
                dWeight.storage[i] += dy.storage[base + i] * value * inverse
            }
        }
        return (dx, dWeight)
    }
}
