/// An attention layer whose weights stay on the GPU between calls.
///
/// Made once from a CPU layer (``CCA``, ``GQA`` or ``MLA``), it uploads the weights in the chosen
/// precision; each ``forward(_:mask:)`` then uploads only the input and downloads only the output.
///
/// ```swift
/// let gpu = try CUDALayer(layer)                 // bfloat16 storage
/// let y = try gpu.forward(x, mask: mask)         // a CPU Tensor<Float>, like layer.forward(x, mask: mask)
/// ```
public final class CUDALayer: Sendable {
    /// How the weights and activations are stored on the GPU.
    public let precision: CUDAPrecision
    /// Model width E.
    public let hiddenSize: Int
    let context: CUDAContext
    let implementation: any DeviceAttentionLayer
    let config: any DeviceAttentionConfig

    /// Uploads `layer`'s weights to the GPU of ``CUDAContext/shared()``.
    /// - Throws: ``CUDAError`` when CUDA is unavailable or the layer kind has no GPU path.
    public init(_ layer: any AttentionLayer<Float>, precision: CUDAPrecision = .bfloat16) throws {
        guard let config = layer.config as? any DeviceAttentionConfig else {
            throw CUDAError.unsupported("\(layer.config.kindName) layers")
        }
        let context = try CUDAContext.shared()
        self.context = context
        self.config = config
        self.precision = precision
        hiddenSize = layer.hiddenSize
        implementation = try context.exclusive {
            try config.deviceLayer(weights: try config.upload(layer.weights, precision: precision, context: context), context: context)
        }
    }

    /// Runs the layer on `x` `[B, S, E]` on the GPU, with the same meaning as ``AttentionLayer/forward(_:mask:)``.
    /// - Parameter mask: optional `[B, S]`, 1 for tokens and 0 for padding.
    public func forward(_ x: Tensor<Float>, mask: Tensor<Float>? = nil) throws -> Tensor<Float> {
        try run(x, mask: mask, keep: false).y
    }

    /// The forward pass on the GPU keeping what its backward pass needs, and that backward pass: `dy`
    /// `[B, S, E]` → `dx` and every weight's gradient (float32, under the weight names), as
    /// ``AttentionLayer/pullback(_:layout:)`` gives them on the CPU. The saved activations stay on the GPU
    /// until the closure is released.
    public func pullback(_ x: Tensor<Float>, mask: Tensor<Float>? = nil) throws
        -> (y: Tensor<Float>, backward: (Tensor<Float>) throws -> (dx: Tensor<Float>, grads: [String: Tensor<Float>])) {
        let (y, layout, backward) = try run(x, mask: mask, keep: true)
        return (y, { [context, precision, config] dy in
            try layout.validate(dy, width: self.hiddenSize, name: "output gradient dy")
            return try context.exclusive {
                let grads = try config.zeroGradients(context: context)
                let dx = try backward!(try context.upload(layout.zeroingPadding(dy), precision), grads)
                return (try layout.zeroingPadding(try context.download(dx)).reshaped(dy.shape), try grads.mapValues { try context.download($0) })
            }
        })
    }

    private func run(_ x: Tensor<Float>, mask: Tensor<Float>?, keep: Bool) throws
        -> (y: Tensor<Float>, layout: SequenceLayout, backward: DeviceBackward?) {
        guard x.rank == 3 else { throw ShapeError.rank(name: "input x", expected: 3, actual: x.shape) }
        let layout = try SequenceLayout(batch: x.shape[0], length: x.shape[1], mask: mask)
        try layout.validate(x, width: hiddenSize)
        let (y, backward) = try context.exclusive {
            let keyValid = try layout.keyValid.map { flags in try context.upload(flags.map { $0 ? UInt8(1) : 0 }) }
            let deviceX = try context.upload(layout.zeroingPadding(x), precision)
            let (y, backward) = try implementation.forward(deviceX, keyValid: keyValid, keep: keep, context: context)
            return (try context.download(y), backward)
        }
        return (layout.zeroingPadding(y), layout, backward)
    }
}
