/// CCA's QK normalisation `y = x · c / max(|x|, eps) · s[h]` over vectors of `width` (vector `i` belongs to
/// head `h = i mod heads`; `s` is the key temperature, or absent for queries), and its backward pass.
///
/// The clamp matters for the gradient: where `|x| > eps`, the unit map's derivative is
/// `(c/|x|)·(g − x·(x·g)/|x|²)`; where the clamp is active the map is linear, `(c/eps)·g`.
public enum L2Normalization {
    /// Machine epsilon of `Float`, the clamp the reference QK norm uses (`torch.finfo(float32).eps`).
    public static let epsilon = Double(Float.ulpOfOne)

    /// `y` and each vector's norm (which the backward pass reads).
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ x: Tensor<S>, width: Int, target: S, scales: [S]? = nil)
        -> (y: Tensor<S>, norms: [S]) {
        let vectors = x.count / width, heads = scales?.count ?? 1
        guard vectors > 0 else { return (x, []) }
        var norms = [S](repeating: 0, count: vectors)
        let y = Tensor<S>(shape: x.shape) { y in x.storage.withUnsafeBufferPointer { x in norms.withUnsafeMutableBufferPointer { norms in
            let (y, x, norms) = (y.baseAddress!, x.baseAddress!, norms.baseAddress!)
            parallelRanges(vectors, costPerItem: 3 * width) { range in
                for vector in range {
                    let (input, output) = (x + vector * width, y + vector * width)
                    var sumOfSquares: S = 0
                    for i in 0..<width { sumOfSquares += input[i] * input[i] }
                    norms[vector] = sumOfSquares.squareRoot()
                    let factor = target / max(norms[vector], S(epsilon)) * (scales?[vector % heads] ?? 1)
                    for i in 0..<width { output[i] = input[i] * factor }
                }
            }
        }}}
        return (y, norms)
    }

    /// `dx` for `dy`, and `ds` per head when `scales` were given.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dy: Tensor<S>, x: Tensor<S>, norms: [S], width: Int, target: S,
                                                 scales: [S]? = nil) -> (dx: Tensor<S>, dScales: [S]?) {
        let heads = scales?.count ?? 1, eps = S(epsilon)
        var dx = dy
        var dScales = scales.map { [S](repeating: 0, count: $0.count) }
        for vector in 0..<norms.count {
            let norm = norms[vector], base = vector * width, head = vector % heads
            let unitScale = target / max(norm, eps)
            // g: the gradient reaching the unit-norm vector, after the temperature.
            var dot: S = 0, scaleGradient: S = 0
            let factor = scales?[head] ?? 1
            for i in 0..<width {
                scaleGradient += dy.storage[base + i] * x.storage[base + i] * unitScale
                dot += x.storage[base + i] * dy.storage[base + i] * factor
            }
            dScales?[head] += scaleGradient
            let projection = norm > eps ? dot / (norm * norm) : 0
            for i in 0..<width {
                dx.storage[base + i] = unitScale * (dy.storage[base + i] * factor - x.storage[base + i] * projection)
            }
        }
        return (dx, dScales)
    }
}
