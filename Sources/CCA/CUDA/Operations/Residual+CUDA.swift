/// The residual add of the pre-norm blocks, `y = a + b`, on the GPU (`residual.cu`); on the CPU the blocks
/// add in place in a loop. For an add followed by a norm, ``RMSNorm/forward(_:adding:into:weight:epsilon:context:)``
/// does both in one pass.
enum Residual {
    /// Writes `a + b` (rounded to the storage type) into `y`, which may be `a` or `b`.
    static func add(_ a: DeviceTensor, _ b: DeviceTensor, into y: DeviceTensor, context: CUDAContext) throws {
        precondition(a.count == b.count && a.count == y.count && a.precision == b.precision && a.precision == y.precision,
                     "residual add: \(a.shape) + \(b.shape) into \(y.shape)")
        let kernel = try context.kernel("residual_add", in: .residual, precision: a.precision)
        // Whole 16-byte steps when every tensor allows them (the count as one row of that width).
        let step = CUDAContext.elementsPerStep(width: a.count, a, b, y)
        try context.launchElementwise(kernel, count: a.count / step, [a.address, b.address, y.address, Int64(a.count), Int32(step)])
    }
}
