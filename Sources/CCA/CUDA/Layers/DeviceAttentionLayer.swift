/// A layer's GPU implementation: its weights resident on the device, a forward pass from device input that,
/// when asked to keep, returns its backward pass.
protocol DeviceAttentionLayer: Sendable {
    /// `x` `[B,S,E]` with padded rows already zero → `y` `[B,S,E]` (padded rows not yet zeroed); `keyValid`
    /// is `[B·S]` bytes or nil. With `keep`, the backward pass, holding what it needs from this forward.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?)
}

/// The backward pass of one GPU forward: `dy` `[B,S,E]` (zero on padded rows) → `dx` `[B,S,E]` in the
/// storage precision and every weight's gradient in float32, under the interchange names.
typealias DeviceBackward = (DeviceTensor) throws -> (dx: DeviceTensor, grads: [String: DeviceTensor])

/// A layer configuration whose kind has a GPU implementation (each kind's `Device*.swift` conforms).
protocol DeviceAttentionConfig: AttentionConfig {
    /// The GPU layer with `weights` uploaded in `precision`.
    func deviceLayer(weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> any DeviceAttentionLayer
}
