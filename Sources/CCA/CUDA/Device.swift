/// Where a layer runs.
public enum Device: String, Sendable, CaseIterable {
    /// The Swift CPU path, the readable reference.
    case cpu
    /// The GPU through CUDA, loaded at run time (see ``CUDALayer``).
    case cuda
}

extension AttentionLayer where Scalar == Float {
    /// Runs the layer on `device`. On `.cuda` the weights are uploaded for this call alone: keep a
    /// ``CUDALayer`` to run a layer many times.
    /// - Parameter precision: the GPU storage type; ignored on the CPU, which always computes in float32.
    public func forward(_ x: Tensor<Float>, mask: Tensor<Float>?, device: Device, precision: CUDAPrecision = .bfloat16) throws -> Tensor<Float> {
        switch device {
        case .cpu: return try forward(x, mask: mask)
        case .cuda: return try CUDALayer(self, precision: precision).forward(x, mask: mask)
        }
    }
}
