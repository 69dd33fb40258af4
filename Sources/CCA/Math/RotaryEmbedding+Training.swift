import RealModule

extension RotaryEmbedding {
    /// Rotates (or, with `inverse`, rotates back) the first `rotaryDim` channels of every head in `rows`
    /// rows, row `r` at position `r % length` (the rows are whole sequences of `length` tokens).
    ///
    /// The inverse rotation is the transpose of the forward one, so it is also RoPE's backward pass.
    /// Heads start `headStride` apart and rows `rowStride` apart, which also covers MLA's rotary slices.
    func rotate<S: TrainingScalar>(_ data: inout [S], offset: Int = 0, rows: Int, length: Int, rowStride: Int,
                                   heads: Int, headStride: Int, inverse: Bool = false) {
        let half = rotaryDim / 2
        guard half > 0, rows > 0 else { return }
        var cosines = [S](repeating: 0, count: length * half), sines = cosines
        for position in 0..<length {
            for i in 0..<half {
                // Same angles (computed in Double) as the inference path, rounded to S.
                let angle = Double(position) * Double.pow(theta, -2 * Double(i) / Double(rotaryDim))
                cosines[position * half + i] = S(Double.cos(angle))
                sines[position * half + i] = S(inverse ? -Double.sin(angle) : Double.sin(angle))
            }
        }
        for r in 0..<rows {
            let table = (r % length) * half
            for h in 0..<heads {
                let head = offset + r * rowStride + h * headStride
                for i in 0..<half {
                    let (x1, x2) = (data[head + i], data[head + i + half])
                    let (c, s) = (cosines[table + i], sines[table + i])
                    data[head + i] = x1 * c - x2 * s
                    data[head + i + half] = x2 * c + x1 * s
                }
            }
        }
    }
}
