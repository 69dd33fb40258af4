import RealModule

/// The exact GELU activation `x · Φ(x) = x/2 · (1 + erf(x/√2))`, as PyTorch's `nn.GELU()` computes it (not
/// the tanh approximation). Forward only: ZAYA's router runs it, and nothing trains through it yet.
public enum GELU {
    /// `x` with GELU applied to every element.
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ x: Tensor<S>) -> Tensor<S> {
        var y = x
        let inverseRoot2 = 1 / S(2).squareRoot()
        for i in 0..<y.count {
            let value = y.storage[i]
            y.storage[i] = value / 2 * (1 + S.erf(value * inverseRoot2))
        }
        return y
    }
}
