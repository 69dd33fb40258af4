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
        var addresses = [x.address, y.address, weight.address]
        if let residual { addresses += [residual.b.address, residual.sum.address] }
        let step = CUDAContext.elementsPerStep(width: x.columns, addresses: addresses, strides: [x.stride])
        try context.launch(kernel, grid: ((x.rows + rowsPerBlock - 1) / rowsPerBlock, 1, 1), threads: 32 * rowsPerBlock,
                           [x.address, Int64(x.stride), residual?.b.address ?? 0, residual?.sum.address ?? 0, y.address,
                            weight.address, inverseRMS.address, Int64(x.rows), Int32(x.columns), epsilon, Int32(step)])
        return (y, inverseRMS)
    }

    /// Rows a block of `rms_norm.cu` takes, one a warp (WARPS there).
    private static let rowsPerBlock = 8

    /// ``backward(_:x:weight:inverseRMS:)`` on the GPU: writes `dx` into `dx` (a dense tensor's matrix, or a
    /// column range of a wider one) — plus `residualGradient` when given, the gradient a residual path
    /// carries past the norm, so that `dx` may be `residualGradient` itself — and adds `dWeight` to `dWeight`
    /// (float32 `[width]`; zero it first for a fresh gradient), all in one pass over the rows and one
    /// deterministic sum of the blocks' partial sums (``ColumnSums``).
    /// - Parameters:
    ///   - dy: `[rows, width]`, dense.
    ///   - x: the forward pass's input, as it was passed to it.
    ///   - inverseRMS: `[rows]`, from the forward pass.
    ///   - residualGradient: `[rows, width]`, dense, or nil.
    /// - Throws: ``CUDAError/unsupported(_:)`` for a width whose per-warp float32 sums do not fit in a
    ///   block's shared memory (about 7,000 columns on Hopper).
    static func backward(_ dy: DeviceTensor, x: DeviceMatrix, weight: DeviceTensor, inverseRMS: DeviceTensor,
                         adding residualGradient: DeviceTensor? = nil, dWeight: DeviceTensor, into dx: DeviceMatrix,
                         context: CUDAContext) throws {
        let (rows, width) = (x.rows, x.columns)
        precondition(dy.count == rows * width && dx.rows == rows && dx.columns == width && inverseRMS.count == rows
                     && weight.count == width && dy.precision == x.precision && dx.precision == x.precision
                     && residualGradient.map { $0.count == rows * width && $0.precision == x.precision } ?? true,
                     "rms_norm backward: dy \(dy.shape), x \(rows)x\(width), dx \(dx.rows)x\(dx.columns)")
        guard rows > 0, width > 0 else { return }
        let sharedBytes = rowsPerBlock * width * 4
        guard sharedBytes <= context.sharedBytesPerBlock else {
            throw CUDAError.unsupported("the GPU RMSNorm backward of rows of \(width) columns: its \(rowsPerBlock) warps' float32 weight-gradient sums need \(sharedBytes) bytes of shared memory, more than a block's \(context.sharedBytesPerBlock); use rows of at most \(context.sharedBytesPerBlock / (4 * rowsPerBlock)) columns")
        }
        // A few blocks a multiprocessor, each looping over rows, so that the partial sums stay small.
        let blocksPerMultiprocessor = max(1, min(4, context.sharedBytesPerBlock / sharedBytes))
        let blocks = min((rows + rowsPerBlock - 1) / rowsPerBlock, blocksPerMultiprocessor * context.multiprocessorCount)
        let partials = try context.empty([blocks, width], .float32)
        var addresses = [dy.address, x.address, weight.address, dx.address]
        if let residualGradient { addresses.append(residualGradient.address) }
        let step = CUDAContext.elementsPerStep(width: width, addresses: addresses, strides: [x.stride, dx.stride])
        let kernel = try context.kernel("rms_norm_backward", in: .rmsNorm, precision: x.precision)
        try context.launch(kernel, grid: (blocks, 1, 1), threads: 32 * rowsPerBlock, sharedBytes: sharedBytes,
                           [dy.address, x.address, Int64(x.stride), weight.address, inverseRMS.address,
                            residualGradient?.address ?? 0, dx.address, Int64(dx.stride), Int64(rows), Int32(width),
                            partials.address, Int32(step)])
        try ColumnSums.sum(partials.matrix, into: dWeight, accumulate: true, context: context)
    }
}
