extension Linear {
    /// ``Linear/forward(_:_:bias:)`` on the GPU: `y = x · Wᵀ` for a linear weight `W` `[out, in]`, through
    /// cuBLAS with float accumulation (bf16 operands on the tensor cores, float32 in true float32).
    ///
    /// `x` and `y` may be strided column ranges of wider matrices (CCA writes q0 and k0 side by side).
    /// cuBLAS is column-major, so the row-major product is computed as `yᵀ = W · xᵀ`: W read transposed
    /// from its row-major storage, xᵀ and yᵀ as column-major matrices with the rows' strides.
    static func forward(_ x: DeviceMatrix, _ weight: DeviceTensor, into y: DeviceMatrix, context: CUDAContext) throws {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(x.columns == inFeatures && y.columns == outFeatures && x.rows == y.rows, "linear: shapes do not match")
        precondition(x.precision == weight.precision && y.precision == weight.precision, "linear: mixed precisions")
        try gemm(transposeA: true, transposeB: false, m: outFeatures, n: x.rows, k: inFeatures,
                 a: (weight.address, inFeatures, weight.precision), b: (x.address, x.stride, x.precision),
                 c: (y.address, y.stride, y.precision), accumulate: false, context: context,
                 name: "linear \(x.rows)x\(inFeatures) · \(outFeatures)x\(inFeatures)ᵀ")
    }

    /// `x · Wᵀ` as a new tensor `[x's leading dimensions…, out]`.
    static func forward(_ x: DeviceTensor, _ weight: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let y = try context.empty(Array(x.shape.dropLast()) + [weight.shape[0]], x.precision)
        try forward(x.matrix, weight, into: y.matrix, context: context)
        return y
    }

    /// ``Linear/backward(_:x:weights:withBias:dx:)`` on the GPU for one weight: `dx (+)= dy · W` (in the
    /// storage precision; `accumulate` adds to what `dx` holds) and `dW += dyᵀ · x` into the float32 `dWeight`
    /// (always added, so that micro-batches and shared weights accumulate).
    static func backward(_ dy: DeviceMatrix, x: DeviceMatrix, weight: DeviceTensor, dx: DeviceMatrix, accumulate: Bool,
                         dWeight: DeviceTensor, context: CUDAContext) throws {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(dy.columns == outFeatures && x.columns == inFeatures && dx.columns == inFeatures
                     && dy.rows == x.rows && dx.rows == x.rows, "linear backward: shapes do not match")
        precondition(dWeight.shape == weight.shape && dWeight.precision == .float32, "linear backward: dW must be float32 of W's shape")
        // dxᵀ [in, rows] = Wᵀ-as-stored [in, out] · dyᵀ [out, rows].
        try gemm(transposeA: false, transposeB: false, m: inFeatures, n: x.rows, k: outFeatures,
                 a: (weight.address, inFeatures, weight.precision), b: (dy.address, dy.stride, dy.precision),
                 c: (dx.address, dx.stride, dx.precision), accumulate: accumulate, context: context,
                 name: "linear backward dx \(x.rows)x\(outFeatures) · \(outFeatures)x\(inFeatures)")
        try weightGradient(dy, x: x, into: dWeight, context: context)
    }

    /// `dW += dyᵀ · x` into the float32 `dWeight` `[out, in]`: the weight half of the backward, for callers
    /// whose `dx` comes another way.
    static func weightGradient(_ dy: DeviceMatrix, x: DeviceMatrix, into dWeight: DeviceTensor, context: CUDAContext) throws {
        let (outFeatures, inFeatures) = (dWeight.shape[0], dWeight.shape[1])
        precondition(dy.columns == outFeatures && x.columns == inFeatures && dy.rows == x.rows && dWeight.precision == .float32,
                     "linear weight gradient: shapes do not match")
        // dWᵀ [in, out] = xᵀ [in, rows] · dy [rows, out], accumulated in float32.
        try gemm(transposeA: false, transposeB: true, m: inFeatures, n: outFeatures, k: x.rows,
                 a: (x.address, x.stride, x.precision), b: (dy.address, dy.stride, dy.precision),
                 c: (dWeight.address, inFeatures, .float32), accumulate: true, context: context,
                 name: "linear backward dW \(outFeatures)x\(x.rows) · \(x.rows)x\(inFeatures)")
    }

    /// One column-major cuBLAS product `C = op(A) · op(B) (+ C)` with float accumulation.
    private static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                             a: (address: UInt64, leading: Int, precision: CUDAPrecision),
                             b: (address: UInt64, leading: Int, precision: CUDAPrecision),
                             c: (address: UInt64, leading: Int, precision: CUDAPrecision),
                             accumulate: Bool, context: CUDAContext, name: @autoclosure () -> String) throws {
        guard m > 0, n > 0 else { return }
        var alpha: Float = 1, beta: Float = accumulate ? 1 : 0
        if k == 0 && !accumulate { return try context.zero(address: c.address, count: m * n, precision: c.precision) }
        let blas = context.blas
        try blas.check(blas.gemmEx(context.blasHandle, transposeA ? CUBLAS.transpose : CUBLAS.noTranspose,
                                   transposeB ? CUBLAS.transpose : CUBLAS.noTranspose, Int32(m), Int32(n), Int32(k),
                                   &alpha, a.address, a.precision.cublasType, Int32(a.leading),
                                   b.address, b.precision.cublasType, Int32(b.leading),
                                   &beta, c.address, c.precision.cublasType, Int32(c.leading),
                                   CUBLAS.compute32F, CUBLAS.defaultAlgorithm), "cublasGemmEx(\(name()))")
    }
}
