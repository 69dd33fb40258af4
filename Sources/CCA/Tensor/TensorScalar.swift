import RealModule

/// The scalar of a ``Tensor``: `Float` for everything that runs, `Double` for gradient checks.
///
/// Every operation is written once, generic over this protocol, so the float64 checks exercise exactly
/// the code that runs in float32; the operations carry `@_specialize(where S == Float)` so the float32
/// path runs specialised code even when called through a protocol. The two hot loops are requirements:
/// `Float` maps them to ``MatrixMultiply`` and the vectorised exp, `Double` to plain loops (it only runs
/// on the tiny shapes of the checks).
public protocol TensorScalar: BinaryFloatingPoint, Real, Sendable {
    /// `C = alpha · op(A) · op(B) + beta · C`, row-major with leading dimensions, as BLAS `gemm`.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, parallel: Bool)

    /// Replaces each of the `count` values by its exponential: the softmax and SiLU hot loops.
    static func exponentiate(_ values: UnsafeMutablePointer<Self>, count: Int)

    /// The largest of the `count` values, NaNs skipped (-inf for none): a softmax row's maximum.
    static func maximum(_ values: UnsafePointer<Self>, count: Int) -> Self

    /// Replaces each value `x` by `exp(x − shift)` and returns their sum (NaN stays NaN).
    static func exponentiateShifted(_ values: UnsafeMutablePointer<Self>, count: Int, shift: Self) -> Self
}

extension Float: TensorScalar {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool) {
        MatrixMultiply.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, parallel: parallel)
    }

    public static func exponentiate(_ values: UnsafeMutablePointer<Float>, count: Int) { vectorExp(values, count: count) }

    public static func maximum(_ values: UnsafePointer<Float>, count: Int) -> Float { VectorMath.maximum(values, count: count) }

    public static func exponentiateShifted(_ values: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        VectorMath.exponentiateShifted(values, count: count, shift: shift)
    }
}

extension Double: TensorScalar {
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

    public static func maximum(_ values: UnsafePointer<Double>, count: Int) -> Double {
        (0..<count).reduce(-Double.infinity) { values[$1] > $0 ? values[$1] : $0 }
    }

    public static func exponentiateShifted(_ values: UnsafeMutablePointer<Double>, count: Int, shift: Double) -> Double {
        var sum = 0.0
        for i in 0..<count {
            values[i] = Double.exp(values[i] - shift)
            sum += values[i]
        }
        return sum
    }
}
