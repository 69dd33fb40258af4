/// CCA's QK normalisation `y = x · c / max(|x|, eps)` over vectors of `width`, with its backward pass.
///
/// The clamp matters for the gradient: where `|x| > eps`, `dx = (c/|x|)·(g − x·(x·g)/|x|²)`; where the
/// clamp is active the map is linear, `dx = (c/eps)·g`.
enum L2NormalizationTraining {
    /// Normalises every vector of `data` in place to norm `target`; returns each vector's norm.
    static func forward<S: TrainingScalar>(_ data: inout [S], width: Int, target: S) -> [S] {
        let vectors = data.count / width
        let epsilon = S(Normalization.l2Epsilon)
        var norms = [S](repeating: 0, count: vectors)
        for vector in 0..<vectors {
            var sumOfSquares: S = 0
            for i in 0..<width { sumOfSquares += data[vector * width + i] * data[vector * width + i] }
            norms[vector] = sumOfSquares.squareRoot()
            let scale = target / max(norms[vector], epsilon)
            for i in 0..<width { data[vector * width + i] *= scale }
        }
        return norms
    }

    /// `dx` for `dy`, given the inputs `x` and their `norms` from ``forward(_:width:target:)``.
    static func backward<S: TrainingScalar>(_ dy: [S], x: [S], norms: [S], width: Int, target: S) -> [S] {
        let epsilon = S(Normalization.l2Epsilon)
        var dx = dy
        for vector in 0..<norms.count {
            let norm = norms[vector], base = vector * width
            guard norm > epsilon else {
                for i in 0..<width { dx[base + i] = dy[base + i] * target / epsilon }
                continue
            }
            var dot: S = 0
            for i in 0..<width { dot += x[base + i] * dy[base + i] }
            let scale = target / norm, projection = dot / (norm * norm)
            for i in 0..<width { dx[base + i] = scale * (dy[base + i] - x[base + i] * projection) }
        }
        return dx
    }
}
