/// The SwiGLU activation `h = silu(gate) ∘ up` and its backward pass, on the fused `[rows, 2·I]` output of
/// the gate and up projections (gate columns first).
public enum SwiGLU {
    /// `h` `[rows, I]`, and `σ(gate)` `[rows, I]`, which the backward pass reuses rather than paying for
    /// the exponentials again.
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ gateUp: Tensor<S>) -> (h: Tensor<S>, sigmoid: [S]) {
        let width = gateUp.shape.last! / 2, rows = gateUp.count / (2 * width)
        var sigmoid = [S](repeating: 0, count: rows * width)
        for r in 0..<rows { for i in 0..<width { sigmoid[r * width + i] = -gateUp.storage[r * 2 * width + i] } }
        // σ(z) = 1 / (1 + exp(−z)), the exponentials in one vectorised pass.
        sigmoid.withUnsafeMutableBufferPointer { S.exponentiate($0.baseAddress!, count: $0.count) }
        var h = Tensor<S>(zeros: Array(gateUp.shape.dropLast()) + [width])
        for r in 0..<rows {
            for i in 0..<width {
                let index = r * width + i
                sigmoid[index] = 1 / (1 + sigmoid[index])
                h.storage[index] = gateUp.storage[r * 2 * width + i] * sigmoid[index] * gateUp.storage[r * 2 * width + width + i]
            }
        }
        return (h, sigmoid)
    }

    /// `d(gate | up)` for `dh`; `d silu(z)/dz = σ(z)·(1 + z·(1 − σ(z)))`.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dh: Tensor<S>, gateUp: Tensor<S>, sigmoid: [S]) -> Tensor<S> {
        let width = gateUp.shape.last! / 2, rows = gateUp.count / (2 * width)
        var dGateUp = Tensor<S>(zeros: gateUp.shape)
        for r in 0..<rows {
            for i in 0..<width {
                let (z, u) = (gateUp.storage[r * 2 * width + i], gateUp.storage[r * 2 * width + width + i])
                let (sigma, g) = (sigmoid[r * width + i], dh.storage[r * width + i])
                dGateUp.storage[r * 2 * width + i] = g * u * sigma * (1 + z * (1 - sigma))
                dGateUp.storage[r * 2 * width + width + i] = g * z * sigma
            }
        }
        return dGateUp
    }
}
