extension SwiGLU {
    /// ``forward(_:)`` on the GPU (`swiglu.cu`): `h` `[rows, I]` for the fused `gateUp` `[rows, 2·I]`.
    ///
    /// Unlike the CPU operation it keeps no `σ(gate)`: ``backward(_:gateUp:context:)`` recomputes it, which
    /// costs one exponential per element and saves a `[rows, I]` buffer per layer.
    static func forward(_ gateUp: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let width = gateUp.shape.last! / 2, rows = gateUp.count / max(1, 2 * width)
        let h = try context.empty(Array(gateUp.shape.dropLast()) + [width], gateUp.precision)
        let kernel = try context.kernel("swiglu_forward", in: .swiGLU, precision: gateUp.precision)
        let step = CUDAContext.elementsPerStep(width: width, gateUp, h)
        try context.launchElementwise(kernel, count: rows * width / step, [gateUp.address, h.address, Int64(rows), Int32(width), Int32(step)])
        return h
    }

    /// ``backward(_:gateUp:sigmoid:)`` on the GPU: `d(gate | up)` `[rows, 2·I]` for `dh` `[rows, I]`.
    static func backward(_ dh: DeviceTensor, gateUp: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let width = gateUp.shape.last! / 2, rows = gateUp.count / max(1, 2 * width)
        precondition(dh.count == rows * width && dh.precision == gateUp.precision, "swiglu backward: dh \(dh.shape), gate|up \(gateUp.shape)")
        let dGateUp = try context.empty(gateUp.shape, gateUp.precision)
        let kernel = try context.kernel("swiglu_backward", in: .swiGLU, precision: gateUp.precision)
        let step = CUDAContext.elementsPerStep(width: width, dh, gateUp, dGateUp)
        try context.launchElementwise(kernel, count: rows * width / step,
                                      [dh.address, gateUp.address, dGateUp.address, Int64(rows), Int32(width), Int32(step)])
        return dGateUp
    }
}
