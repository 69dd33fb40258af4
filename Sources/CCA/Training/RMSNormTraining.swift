/// RMSNorm `y = x / sqrt(mean(x²) + eps) · w` over rows of `width`, with its backward pass.
struct RMSNormTraining<S: TrainingScalar> {
    let width: Int
    let epsilon: S

    /// What the backward pass needs: the input rows and their inverse RMS.
    struct Activations {
        var x: [S]
        var inverseRMS: [S]
    }

    /// Normalises the `width`-wide columns starting at `column` of rows of `stride` values.
    func forward(_ input: [S], rows: Int, weight: [S], stride: Int? = nil, column: Int = 0) -> ([S], Activations) {
        let stride = stride ?? width
        var x = [S](repeating: 0, count: rows * width), y = x
        var inverse = [S](repeating: 0, count: rows)
        for r in 0..<rows {
            var sumOfSquares: S = 0
            for i in 0..<width {
                let value = input[r * stride + column + i]
                x[r * width + i] = value
                sumOfSquares += value * value
            }
            inverse[r] = 1 / (sumOfSquares / S(width) + epsilon).squareRoot()
            for i in 0..<width { y[r * width + i] = x[r * width + i] * inverse[r] * weight[i] }
        }
        return (y, Activations(x: x, inverseRMS: inverse))
    }

    /// `dx` `[rows, width]` and `dw` `[width]` for `dy` `[rows, width]`.
    ///
    /// With `g = dy ∘ w` and `r` the inverse RMS: `dx = r·g − r³·x·(g·x)/width`, `dw = Σ_rows dy ∘ x ∘ r`.
    func backward(_ dy: [S], weight: [S], _ saved: Activations) -> (dx: [S], dWeight: [S]) {
        let rows = saved.inverseRMS.count
        var dx = [S](repeating: 0, count: rows * width), dWeight = [S](repeating: 0, count: width)
        for r in 0..<rows {
            let inverse = saved.inverseRMS[r]
            var dot: S = 0
            for i in 0..<width { dot += dy[r * width + i] * weight[i] * saved.x[r * width + i] }
            let correction = inverse * inverse * inverse * dot / S(width)
            for i in 0..<width {
                let x = saved.x[r * width + i]
                dx[r * width + i] = inverse * dy[r * width + i] * weight[i] - correction * x
                dWeight[i] += dy[r * width + i] * x * inverse
            }
        }
        return (dx, dWeight)
    }
}
