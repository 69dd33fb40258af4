/// Normalisations used by the attention layers.
public enum Normalization {
    /// Machine epsilon of `Float`, the clamp the reference QK norm uses (`torch.finfo(float32).eps`).
    public static let l2Epsilon = Float.ulpOfOne

    /// Scales every `width`-long vector in `data` to L2 norm `targetNorm`: `x · targetNorm / max(|x|, eps)`.
    public static func l2Normalize(_ data: UnsafeMutablePointer<Float>, vectors: Int, width: Int, targetNorm: Float) {
        for v in 0..<vectors {
            let vector = data + v * width
            var sumOfSquares: Float = 0
            for i in 0..<width { sumOfSquares += vector[i] * vector[i] }
            let scale = targetNorm / max(sumOfSquares.squareRoot(), l2Epsilon)
            for i in 0..<width { vector[i] *= scale }
        }
    }

    /// RMSNorm of every `width`-long row: `x / sqrt(mean(x²) + eps) · weight`, written to `output`.
    public static func rmsNorm(_ input: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>,
                               epsilon: Float, output: UnsafeMutablePointer<Float>) {
        parallelFor(min(rows, coreCount * 4)) { chunk in
            let chunks = min(rows, coreCount * 4)
            for r in stride(from: chunk, to: rows, by: chunks) {
                let x = input + r * width, y = output + r * width
                var sumOfSquares: Float = 0
                for i in 0..<width { sumOfSquares += x[i] * x[i] }
                let inverse = 1 / (sumOfSquares / Float(width) + epsilon).squareRoot()
                for i in 0..<width { y[i] = x[i] * inverse * weight[i] }
            }
        }
    }
}
