/// A layer's GPU implementation: its weights resident on the device and a forward pass from device input.
protocol DeviceAttentionLayer: Sendable {
    /// `x` `[B,S,E]` with padded rows already zero → `[B,S,E]`; `keyValid` is `[B·S]` bytes or nil.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, context: CUDAContext) throws -> DeviceTensor
}

/// A layer configuration whose kind has a GPU implementation (each kind's `Device*.swift` conforms).
protocol DeviceAttentionConfig: AttentionConfig {
    /// The GPU layer with `weights` uploaded in `precision`.
    func deviceLayer(weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> any DeviceAttentionLayer
}
