import RealModule

/// Rotary position embedding, NeoX "rotate-half" style, on `rotaryDim` channels of each head, and its
/// backward pass (the inverse rotation, since a rotation's transpose is its inverse).
///
/// Channel `i` and `i + rotaryDim/2` form a pair rotated by `position · theta^(−2i/rotaryDim)`; the
/// angles are computed in `Double`, so long positions stay exact.
public struct RotaryEmbedding: Sendable, Equatable {
    public let rotaryDim: Int
    public let theta: Double
    /// `theta^(−2i/rotaryDim)` for each pair `i`: what the GPU kernels read too, so both rotate alike.
    public let inverseFrequencies: [Double]

    public init(rotaryDim: Int, theta: Double) {
        self.rotaryDim = rotaryDim
        self.theta = theta
        inverseFrequencies = (0..<(rotaryDim / 2)).map { Double.pow(theta, -2 * Double($0) / Double(rotaryDim)) }
    }

    /// Rotates `x` in place: row `r` (of `x.count / positions.count` values) at `positions[r]`, its
    /// `heads` heads `headStride` apart, the rotary channels starting at `offset` within each head.
    public func forward<S: TensorScalar>(_ x: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int = 0) {
        rotate(&x, positions: positions, heads: heads, headStride: headStride, offset: offset, inverse: false)
    }

    /// The gradient through ``forward(_:positions:heads:headStride:offset:)``: `dy` rotated back in place.
    public func backward<S: TensorScalar>(_ dy: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int = 0) {
        rotate(&dy, positions: positions, heads: heads, headStride: headStride, offset: offset, inverse: true)
    }

    @_specialize(where S == Float)
    func rotate<S: TensorScalar>(_ x: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int,
                                 inverse: Bool) {
        let half = rotaryDim / 2, rows = positions.count
        guard half > 0, rows > 0 else { return }
        let rowStride = x.count / rows
        x.storage.withUnsafeMutableBufferPointer { buffer in
            let data = buffer.baseAddress!
            let chunks = min(rows, coreCount * 4)
            parallelFor(chunks) { chunk in
                var cosines = [S](repeating: 0, count: half), sines = cosines
                for r in stride(from: chunk, to: rows, by: chunks) {
                    for i in 0..<half {
                        let angle = Double(positions[r]) * inverseFrequencies[i]
                        cosines[i] = S(Double.cos(angle))
                        sines[i] = S(inverse ? -Double.sin(angle) : Double.sin(angle))
                    }
                    for h in 0..<heads {
                        let head = data + r * rowStride + h * headStride + offset
                        for i in 0..<half {
                            let (x1, x2) = (head[i], head[i + half])
                            head[i] = x1 * cosines[i] - x2 * sines[i]
                            head[i + half] = x2 * cosines[i] + x1 * sines[i]
                        }
                    }
                }
            }
        }
    }
}
