/// ZAYA's learned residual merge `(h + b_h) ∘ s_h + (r + b_r) ∘ s_r` of a block's output `h` and the residual
/// stream `r`, each with its own per-channel bias and scale. Forward only.
public struct ResidualScaling: Sendable {
    public let hiddenScale: Tensor<Float>, hiddenBias: Tensor<Float>
    public let residualScale: Tensor<Float>, residualBias: Tensor<Float>

    /// The four `[E]` vectors under transformers' names (`ZayaResidualScaling`).
    public static let weightNames = (hiddenScale: "hidden_states_scale", hiddenBias: "hidden_states_bias",
                                     residualScale: "residual_scale", residualBias: "residual_bias")

    public init(hiddenScale: Tensor<Float>, hiddenBias: Tensor<Float>, residualScale: Tensor<Float>, residualBias: Tensor<Float>) {
        (self.hiddenScale, self.hiddenBias, self.residualScale, self.residualBias) = (hiddenScale, hiddenBias, residualScale, residualBias)
    }

    /// The merged stream for `hidden` and `residual`, both `[rows, E]`.
    public func forward(_ hidden: Tensor<Float>, residual: Tensor<Float>) -> Tensor<Float> {
        let width = hiddenScale.count
        precondition(hidden.count == residual.count && hidden.count % width == 0, "residual scaling: shapes \(hidden.shape) and \(residual.shape)")
        var y = residual
        for row in 0..<(hidden.count / width) {
            for c in 0..<width {
                let index = row * width + c
                y.storage[index] = (hidden.storage[index] + hiddenBias.storage[c]) * hiddenScale.storage[c]
                    + (residual.storage[index] + residualBias.storage[c]) * residualScale.storage[c]
            }
        }
        return y
    }
}
