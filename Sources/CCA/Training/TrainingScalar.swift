import RealModule

/// A scalar the training math runs in: `Float` for training, `Double` for gradient checks.
///
/// Every forward-for-training and backward pass is written once, generic over this protocol, so the
/// float64 gradient checks exercise exactly the code that trains in float32. The one requirement is the
/// matrix product: `Float` uses ``MatrixMultiply/gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:parallel:)``,
/// `Double` a plain loop (it only ever runs on the tiny shapes of the checks).
public protocol TrainingScalar: BinaryFloatingPoint, Real, Sendable {
    /// `C = alpha · op(A) · op(B) + beta · C`, row-major with leading dimensions, as BLAS `gemm`.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, parallel: Bool)

    /// Replaces each of the `count` values by its exponential: the softmax and SiLU hot loops. `Float`
    /// uses the vectorised exp of the inference softmax, `Double` the exact `exp`.
    static func exponentiate(_ values: UnsafeMutablePointer<Self>, count: Int)
}

extension Float: TrainingScalar {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool) {
        MatrixMultiply.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, parallel: parallel)
    }

    public static func exponentiate(_ values: UnsafeMutablePointer<Float>, count: Int) { vectorExp(values, count: count) }
}

extension Double: TrainingScalar {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int, parallel: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    sum += (transposeA ? a[p * lda + i] : a[i * lda + p]) * (transposeB ? b[j * ldb + p] : b[p * ldb + j])
                }
                // beta 0 overwrites, so uninitialised C never leaks in (BLAS semantics).
                c[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j])
            }
        }
    }

    public static func exponentiate(_ values: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { values[i] = Double.exp(values[i]) }
    }
}

/// Array form of ``TrainingScalar/gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:parallel:)``
/// with element offsets, for code outside `parallelFor` bodies.
func gemm<S: TrainingScalar>(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: S = 1, a: [S], aOffset: Int = 0, lda: Int, b: [S], bOffset: Int = 0, ldb: Int,
                             beta: S = 0, c: inout [S], cOffset: Int = 0, ldc: Int) {
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                S.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                       a: a.baseAddress! + aOffset, lda: lda, b: b.baseAddress! + bOffset, ldb: ldb,
                       beta: beta, c: c.baseAddress! + cOffset, ldc: ldc, parallel: true)
            }
        }
    }
}
