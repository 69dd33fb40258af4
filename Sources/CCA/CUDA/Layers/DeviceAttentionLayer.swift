/// A layer's GPU implementation: its weights resident on the device and a forward pass from device input.
protocol DeviceAttentionLayer: Sendable {
    /// `x` `[B,S,E]` with padded rows already zero → `[B,S,E]`; `keyValid` is `[B·S]` bytes or nil.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, context: CUDAContext) throws -> DeviceTensor
}
