extension CUDAContext {
    /// `y = x · Wᵀ` for a linear weight `W` `[out, in]`, through cuBLAS with float accumulation.
    ///
    /// `x` and `y` may be strided column ranges of wider matrices (CCA writes q0 and k0 side by side).
    /// cuBLAS is column-major, so the row-major product is computed as `yᵀ = W · xᵀ`: W read transposed
    /// from its row-major storage, xᵀ and yᵀ as column-major matrices with the rows' strides.
    func linear(_ x: DeviceMatrix, _ weight: DeviceTensor, into y: DeviceMatrix) throws {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(x.columns == inFeatures && y.columns == outFeatures && x.rows == y.rows, "linear: shapes do not match")
        precondition(x.precision == weight.precision && y.precision == weight.precision, "linear: mixed precisions")
        guard x.rows > 0 else { return }
        let type = weight.precision.cublasType
        var alpha: Float = 1, beta: Float = 0
        try blas.check(blas.gemmEx(blasHandle, CUBLAS.transpose, CUBLAS.noTranspose,
                                   Int32(outFeatures), Int32(x.rows), Int32(inFeatures),
                                   &alpha, weight.address, type, Int32(inFeatures),
                                   x.address, type, Int32(x.stride),
                                   &beta, y.address, type, Int32(y.stride),
                                   CUBLAS.compute32F, CUBLAS.defaultAlgorithm),
                       "cublasGemmEx(\(x.rows)x\(inFeatures) · \(outFeatures)x\(inFeatures)ᵀ)")
    }

    /// `x · Wᵀ` as a new tensor `[x's leading dimensions…, out]`.
    func linear(_ x: DeviceTensor, _ weight: DeviceTensor) throws -> DeviceTensor {
        let y = try empty(Array(x.shape.dropLast()) + [weight.shape[0]], x.precision)
        try linear(x.matrix, weight, into: y.matrix)
        return y
    }
}
