/// An attention layer whose weights stay on the GPU between calls.
///
/// Made once from a CPU layer (``CCA``, ``GQA``, ``MHA`` or ``MLA``), it uploads the weights in the chosen
/// precision; each ``forward(_:mask:)`` then uploads only the input and downloads only the output.
///
/// ```swift
/// let gpu = try CUDALayer(layer)                 // bfloat16 storage
/// let y = try gpu.forward(x, mask: mask)         // a CPU Tensor, like layer.forward(x, mask: mask)
/// ```
public final class CUDALayer: Sendable {
    /// How the weights and activations are stored on the GPU.
    public let precision: CUDAPrecision
    /// Model width E.
    public let hiddenSize: Int
    let context: CUDAContext
    let implementation: any DeviceAttentionLayer

    /// Uploads `layer`'s weights to the GPU of ``CUDAContext/shared()``.
    /// - Throws: ``CUDAError`` when CUDA is unavailable or the layer kind has no GPU path.
    public init(_ layer: any AttentionLayer, precision: CUDAPrecision = .bfloat16) throws {
        let context = try CUDAContext.shared()
        self.context = context
        self.precision = precision
        hiddenSize = layer.hiddenSize
        implementation = try context.exclusive { () throws -> any DeviceAttentionLayer in
            switch layer {
            case let cca as CCA: return try DeviceCCA(cca, precision: precision, context: context)
            case let gqa as GQA: return try DeviceGQA(gqa, precision: precision, context: context)
            case let mha as MHA: return try DeviceGQA(mha.inner, precision: precision, context: context)
            case let mla as MLA: return try DeviceMLA(mla, precision: precision, context: context)
            default: throw CUDAError.unsupported("layer type \(type(of: layer))")
            }
        }
    }

    /// Runs the layer on `x` `[B, S, E]` on the GPU, with the same meaning as ``AttentionLayer/forward(_:mask:)``.
    /// - Parameter mask: optional `[B, S]`, 1 for tokens and 0 for padding.
    public func forward(_ x: Tensor, mask: Tensor? = nil) throws -> Tensor {
        let input = try PreparedInput(x, mask: mask, hiddenSize: hiddenSize)
        var y = try context.exclusive {
            let keyValid = try input.keyValid.map { flags in try context.upload(flags.map { $0 ? UInt8(1) : 0 }) }
            let deviceX = try context.upload(input.x, precision)
            return try context.download(try implementation.forward(deviceX, keyValid: keyValid, context: context))
        }
        input.zeroPadded(&y)
        return y
    }
}
