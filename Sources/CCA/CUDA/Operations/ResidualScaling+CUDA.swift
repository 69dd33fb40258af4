/// A ``ResidualScaling``'s four `[E]` vectors on the device, in float32.
struct DeviceResidualScaling: Sendable {
    let hiddenScale: DeviceTensor, hiddenBias: DeviceTensor, residualScale: DeviceTensor, residualBias: DeviceTensor

    init(_ scaling: ResidualScaling, context: CUDAContext) throws {
        hiddenScale = try context.upload(scaling.hiddenScale, .float32)
        hiddenBias = try context.upload(scaling.hiddenBias, .float32)
        residualScale = try context.upload(scaling.residualScale, .float32)
        residualBias = try context.upload(scaling.residualBias, .float32)
    }
}

extension ResidualScaling {
    /// ZAYA's float32 residual stream on the GPU (`zaya_scale_norm` in `zaya_stream.cu`): with `hidden`
    /// (`[rows, E]` in the storage precision) and its `scaling`, merges it into `stream` (float32
    /// `[rows, E]`) in place as ``forward(_:residual:)`` does; then, with `norm`, returns the RMSNorm of the
    /// stream in `precision` and, with `keepFloat`, in float32 too.
    @discardableResult
    static func merge(_ hidden: DeviceTensor?, scaling: DeviceResidualScaling?, into stream: DeviceTensor,
                      norm: (weight: DeviceTensor, epsilon: Float)?, precision: CUDAPrecision, keepFloat: Bool = false,
                      context: CUDAContext) throws -> (y: DeviceTensor?, yFloat: DeviceTensor?) {
        let width = stream.shape.last!, rows = stream.count / max(1, width)
        precondition(stream.precision == .float32
                     && (hidden.map { $0.count == stream.count && $0.precision == precision && scaling != nil } ?? true),
                     "residual scaling: hidden \(hidden?.shape ?? []) into stream \(stream.shape)")
        let y = try norm.map { _ in try context.empty([rows, width], precision) }
        let yFloat = keepFloat && norm != nil ? try context.empty([rows, width], .float32) : nil
        guard rows > 0 else { return (y, yFloat) }
        let kernel = try context.kernel("zaya_scale_norm", in: .zayaStream, precision: precision)
        try context.launch(kernel, grid: (rows, 1, 1), threads: 256,  // THREADS in zaya_stream.cu
                           [hidden?.address ?? 0, stream.address, scaling?.hiddenScale.address ?? 0,
                            scaling?.hiddenBias.address ?? 0, scaling?.residualScale.address ?? 0,
                            scaling?.residualBias.address ?? 0, norm?.weight.address ?? 0, y?.address ?? 0,
                            yFloat?.address ?? 0, Int32(width), norm?.epsilon ?? 0])
        return (y, yFloat)
    }
}
