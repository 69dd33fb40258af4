/// The linear map `y = x · [W₀; W₁; …]ᵀ + b` and its backward pass.
///
/// Weights are stored `[out, in]` (PyTorch's layout). Several weights side by side give one output whose
/// columns are theirs in turn: CCA computes `[q0 | k0]` in one call without copying its weights into a
/// fused matrix.
public enum Linear {
    /// `x` `[…, in]` → `[…, Σ outᵢ]`, plus `bias` `[Σ outᵢ]` when given.
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ x: Tensor<S>, _ weights: [Tensor<S>], bias: Tensor<S>? = nil) -> Tensor<S> {
        let inFeatures = weights[0].shape[1]
        precondition(x.shape.last == inFeatures, "linear: input \(x.shape) does not end in the weight's \(inFeatures) features")
        let outFeatures = weights.reduce(0) { $0 + $1.shape[0] }
        let rows = x.count / inFeatures
        let shape = Array(x.shape.dropLast()) + [outFeatures]
        guard rows > 0, outFeatures > 0 else { return Tensor(zeros: shape) }
        // The products (beta 0) write every column of y, the weights' outputs side by side: no zeroing first.
        var y = Tensor<S>(shape: shape) { ys in x.storage.withUnsafeBufferPointer { xs in
            var column = 0
            for weight in weights {
                weight.storage.withUnsafeBufferPointer { w in
                    S.gemm(transposeA: false, transposeB: true, m: rows, n: weight.shape[0], k: inFeatures, alpha: 1,
                           a: xs.baseAddress!, lda: inFeatures, b: w.baseAddress!, ldb: inFeatures,
                           beta: 0, c: ys.baseAddress! + column, ldc: outFeatures, parallel: true)
                }
                column += weight.shape[0]
            }
        }}
        if let bias {
            y.storage.withUnsafeMutableBufferPointer { ys in
                for row in 0..<rows { for c in 0..<outFeatures { ys[row * outFeatures + c] += bias.storage[c] } }
            }
        }
        return y
    }

    /// `x` `[…, in]` → `[…, out]`.
    public static func forward<S: TensorScalar>(_ x: Tensor<S>, _ weight: Tensor<S>, bias: Tensor<S>? = nil) -> Tensor<S> {
        forward(x, [weight], bias: bias)
    }

    /// The gradients for `dy` `[…, Σ outᵢ]`: `dWᵢ = dyᵢᵀ · x` for each weight, `db` (the column sums of
    /// `dy`) when `withBias`, and `dy · W` added to `dx` (which must have x's shape).
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dy: Tensor<S>, x: Tensor<S>, weights: [Tensor<S>], withBias: Bool = false,
                                                 dx: inout Tensor<S>) -> (dWeights: [Tensor<S>], dBias: Tensor<S>?) {
        let inFeatures = weights[0].shape[1]
        let outFeatures = weights.reduce(0) { $0 + $1.shape[0] }
        let rows = x.count / inFeatures
        var dWeights = weights.map { Tensor<S>(zeros: $0.shape) }
        guard rows > 0 else { return (dWeights, withBias ? Tensor(zeros: [outFeatures]) : nil) }
        dy.storage.withUnsafeBufferPointer { dys in x.storage.withUnsafeBufferPointer { xs in
        dx.storage.withUnsafeMutableBufferPointer { dxs in
            var column = 0
            for (index, weight) in weights.enumerated() {
                let width = weight.shape[0]
                weight.storage.withUnsafeBufferPointer { w in
                    S.gemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: width, alpha: 1,
                           a: dys.baseAddress! + column, lda: outFeatures, b: w.baseAddress!, ldb: inFeatures,
                           beta: 1, c: dxs.baseAddress!, ldc: inFeatures, parallel: true)
                }
                dWeights[index].storage.withUnsafeMutableBufferPointer { dw in
                    S.gemm(transposeA: true, transposeB: false, m: width, n: inFeatures, k: rows, alpha: 1,
                           a: dys.baseAddress! + column, lda: outFeatures, b: xs.baseAddress!, ldb: inFeatures,
                           beta: 0, c: dw.baseAddress!, ldc: inFeatures, parallel: true)
                }
                column += width
            }
        }}}
        guard withBias else { return (dWeights, nil) }
        var dBias = Tensor<S>(zeros: [outFeatures])
        for row in 0..<rows { for c in 0..<outFeatures { dBias.storage[c] += dy.storage[row * outFeatures + c] } }
        return (dWeights, dBias)
    }

    /// The gradients of a single weight; `dx` is returned fresh.
    public static func backward<S: TensorScalar>(_ dy: Tensor<S>, x: Tensor<S>, weight: Tensor<S>)
        -> (dx: Tensor<S>, dWeight: Tensor<S>) {
        var dx = Tensor<S>(zeros: x.shape)
        let (dWeights, _) = backward(dy, x: x, weights: [weight], dx: &dx)
        return (dx, dWeights[0])
    }
}
