extension RMSNorm {
    /// ``forward(_:weight:epsilon:)`` on the GPU (`rms_norm.cu`): `y` `[rows, width]` (dense) and each row's
    /// inverse RMS `[rows]` (float32, for the backward pass), for `x` — possibly a strided column range of
    /// a wider matrix (MLA normalises the first columns of a projection) — and the float32 `weight` `[width]`.
    static func forward(_ x: DeviceMatrix, weight: DeviceTensor, epsilon: Float,
                        context: CUDAContext) throws -> (y: DeviceTensor, inverseRMS: DeviceTensor) {
        try normalize(x, residual: nil, weight: weight, epsilon: epsilon, context: context)
    }

    /// The residual add fused with the next norm: `h = a + b` (rounded to the storage type) is written
    /// into `sum`, which may be `a` itself, and `y` and the inverse RMS are those of
    /// ``forward(_:weight:epsilon:context:)`` on `h`. All of `a`, `b`, `sum` are dense `[rows, width]`.
    static func forward(_ a: DeviceTensor, adding b: DeviceTensor, into sum: DeviceTensor, weight: DeviceTensor,
                        epsilon: Float, context: CUDAContext) throws -> (y: DeviceTensor, inverseRMS: DeviceTensor) {
        precondition(a.shape == b.shape && a.shape == sum.shape && a.precision == b.precision && a.precision == sum.precision,
                     "residual rms_norm: \(a.shape), \(b.shape) into \(sum.shape)")
        return try normalize(a.matrix, residual: (b, sum), weight: weight, epsilon: epsilon, context: context)
    }

    private static func normalize(_ x: DeviceMatrix, residual: (b: DeviceTensor, sum: DeviceTensor)?, weight: DeviceTensor,
                                  epsilon: Float, context: CUDAContext) throws -> (y: DeviceTensor, inverseRMS: DeviceTensor) {
        precondition(weight.precision == .float32 && weight.count == x.columns, "rms_norm weight \(weight.shape) for width \(x.columns)")
        let y = try context.empty([x.rows, x.columns], x.precision)
        let inverseRMS = try context.empty([x.rows], .float32)
        guard x.rows > 0 else { return (y, inverseRMS) }
        let kernel = try context.kernel("rms_norm", in: .rmsNorm, precision: x.precision)
        try context.launch(kernel, grid: (x.rows, 1, 1), threads: 256,  // THREADS in rms_norm.cu
                           [x.address, Int64(x.stride), residual?.b.address ?? 0, residual?.sum.address ?? 0, y.address,
                            weight.address, inverseRMS.address, Int32(x.columns), epsilon])
        return (y, inverseRMS)
    }

    /// ``backward(_:x:weight:inverseRMS:)`` on the GPU: writes `dx` into `dx` (a dense tensor's matrix, or a
    /// column range of a wider one) and adds `dWeight` to `dWeight` (float32 `[width]`; zero it first for a
    /// fresh gradient). The sum over rows is deterministic (``ColumnSums``).
    /// - Parameters:
    ///   - dy: `[rows, width]`, dense.
    ///   - x: the forward pass's input, as it was passed to it.
    ///   - inverseRMS: `[rows]`, from the forward pass.
    static func backward(_ dy: DeviceTensor, x: DeviceMatrix, weight: DeviceTensor, inverseRMS: DeviceTensor,
                         dWeight: DeviceTensor, into dx: DeviceMatrix, context: CUDAContext) throws {
        let (rows, width) = (x.rows, x.columns)
        precondition(dy.count == rows * width && dx.rows == rows && dx.columns == width && inverseRMS.count == rows
                     && weight.count == width && dy.precision == x.precision && dx.precision == x.precision,
                     "rms_norm backward: dy \(dy.shape), x \(rows)x\(width), dx \(dx.rows)x\(dx.columns)")
        if rows > 0 {
            let kernel = try context.kernel("rms_norm_backward", in: .rmsNorm, precision: x.precision)
            try context.launch(kernel, grid: (rows, 1, 1), threads: 256,
                               [dy.address, x.address, Int64(x.stride), weight.address, inverseRMS.address, dx.address,
                                Int64(dx.stride), Int32(width)])
        }
        let gradient = try context.kernel("rms_norm_weight_gradient", in: .rmsNorm, precision: x.precision)
        try ColumnSums.reduce(rows: rows, width: width, into: dWeight, accumulate: true, context: context) { grid, out, add in
            try context.launch(gradient, grid: grid, threads: 256,
                               [dy.address, x.address, Int64(x.stride), inverseRMS.address, Int64(rows), Int32(width), out, add])
        }
    }
}
