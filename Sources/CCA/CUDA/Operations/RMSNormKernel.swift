extension CUDAContext {
    /// RMSNorm of each row of `x` (a possibly strided column range) with float32 `weight`, as
    /// ``Normalization/rmsNorm(_:rows:width:weight:epsilon:output:)``: a dense `[rows, width]` result.
    func rmsNorm(_ x: DeviceMatrix, weight: DeviceBuffer, epsilon: Float) throws -> DeviceTensor {
        let out = try empty([x.rows, x.columns], x.precision)
        guard x.rows > 0 else { return out }
        let kernel = try self.kernel("rms_norm", in: .rmsNorm, precision: x.precision)
        try launch(kernel, grid: (x.rows, 1, 1), threads: 256,
                   [x.address, Int64(x.stride), out.address, weight.address, Int32(x.columns), epsilon])
        return out
    }
}
