import RealModule

/// Rotary position embedding, NeoX "rotate-half" style, on the first `rotaryDim` channels of each head.
///
/// Channel `i` and `i + rotaryDim/2` form a pair rotated by `position · theta^(-2i/rotaryDim)`;
/// channels from `rotaryDim` on pass through. Angles are computed in `Double` so long positions stay exact.
public struct RotaryEmbedding: Sendable, Equatable {
    public let rotaryDim: Int
    public let theta: Double

    public init(rotaryDim: Int, theta: Double) {
        self.rotaryDim = rotaryDim
        self.theta = theta
    }

    /// Rotates `rows` consecutive rows of `heads × headDim` values, row `r` at position `firstPosition + r`.
    public func apply(_ data: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int, firstPosition: Int) {
        let half = rotaryDim / 2
        guard half > 0 else { return }
        var cosines = [Float](repeating: 0, count: half), sines = [Float](repeating: 0, count: half)
        for r in 0..<rows {
            let position = Double(firstPosition + r)
            for i in 0..<half {
                let angle = position * Double.pow(theta, -2 * Double(i) / Double(rotaryDim))
                cosines[i] = Float(Double.cos(angle))
                sines[i] = Float(Double.sin(angle))
            }
            for h in 0..<heads {
                let head = data + (r * heads + h) * headDim
                for i in 0..<half {
                    let x1 = head[i], x2 = head[i + half]
                    head[i] = x1 * cosines[i] - x2 * sines[i]
                    head[i + half] = x2 * cosines[i] + x1 * sines[i]
                }
            }
        }
    }

    /// Rotates every sequence of a `[B, S, heads, headDim]` tensor, sequence `b` starting at `firstPositions[b]`.
    public func apply(to tensor: inout Tensor, firstPositions: [Int]) {
        let (batch, length, heads, headDim) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
        tensor.storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            parallelFor(batch) { b in
                apply(base + b * length * heads * headDim, rows: length, heads: heads, headDim: headDim,
                      firstPosition: firstPositions[b])
            }
        }
    }
}
