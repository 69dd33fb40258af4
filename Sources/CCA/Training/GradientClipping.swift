/// Clipping by the global L2 norm over all gradients.
public enum GradientClipping {
    /// Scales every gradient by `maxNorm / norm` when the global norm exceeds `maxNorm`; returns the norm
    /// before clipping. Names are visited in sorted order so the sum, and so the run, is reproducible.
    @discardableResult
    public static func clip<S: TensorScalar>(_ grads: inout [String: Tensor<S>], maxNorm: S) -> S {
        var sumOfSquares: S = 0
        for name in grads.keys.sorted() { for g in grads[name]!.storage { sumOfSquares += g * g } }
        let norm = sumOfSquares.squareRoot()
        guard norm > maxNorm else { return norm }
        let scale = maxNorm / norm
        for name in grads.keys { grads[name]!.storage = grads[name]!.storage.map { $0 * scale } }
        return norm
    }
}
