extension GradientClipping {
    /// Blocks of the first pass of ``norm(of:maxNorm:context:)``: a constant, so that the order of the sum,
    /// and so its bits, do not depend on the GPU.
    static let partialBlocks = 1024

    /// The global L2 norm of `gradients` (a flat float32 buffer: ``DeviceParameters``' gradients) and the
    /// clipping factor of ``clip(_:maxNorm:)``, as `[norm, scale]` float32 on the device: `scale` is
    /// `maxNorm / norm` when the norm exceeds `maxNorm`, else 1. The gradients are left as they are:
    /// ``AdamW/update(_:rate:clipping:context:)`` applies the scale as it reads them, and nothing waits for
    /// the host. Deterministic: two passes in a fixed order, in double.
    static func norm(of gradients: DeviceTensor, maxNorm: Float, context: CUDAContext) throws -> DeviceTensor {
        precondition(gradients.precision == .float32, "gradients are float32")
        let partials = try context.empty([partialBlocks * 2], .float32)  // doubles
        let result = try context.empty([2], .float32)
        let squares = try context.kernel("gradient_sum_of_squares", in: .gradientNorm, precision: .float32)
        try context.launch(squares, grid: (partialBlocks, 1, 1), threads: 256,  // THREADS in gradient_norm.cu
                           [gradients.address, Int64(gradients.count), partials.address])
        let finish = try context.kernel("gradient_norm", in: .gradientNorm, precision: .float32)
        try context.launch(finish, grid: (1, 1, 1), threads: 256, [partials.address, Int32(partialBlocks), maxNorm, result.address])
        return result
    }
}
