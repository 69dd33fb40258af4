/// A bias-free linear map `y = x · Wᵀ` (`W` `[out, in]`) and its gradients, for the training code.
enum LinearTraining {
    /// `x` `[rows, in]` → `[rows, out]`.
    static func forward<S: TrainingScalar>(_ x: [S], rows: Int, weight: TrainingTensor<S>) -> [S] {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        var y = [S](repeating: 0, count: rows * outFeatures)
        gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
             b: weight.storage, ldb: inFeatures, c: &y, ldc: outFeatures)
        return y
    }

    /// Adds `dy · W` to `dx` (or overwrites it when `accumulate` is false) and returns `dW = dyᵀ · x`.
    static func backward<S: TrainingScalar>(_ dy: [S], x: [S], rows: Int, weight: TrainingTensor<S>,
                                            dx: inout [S], accumulate: Bool = false) -> TrainingTensor<S> {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        gemm(m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight.storage, ldb: inFeatures,
             beta: accumulate ? 1 : 0, c: &dx, ldc: inFeatures)
        var dWeight = TrainingTensor<S>(zeros: weight.shape)
        gemm(transposeA: true, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures, b: x, ldb: inFeatures,
             c: &dWeight.storage, ldc: inFeatures)
        return dWeight
    }
}
