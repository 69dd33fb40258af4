/// One ``ZayaDecoderLayer`` on the GPU, over the float32 residual stream and the layer's share of the paged
/// decode cache: the input norm, CCGQA through ``DeviceCCADecoder`` (latent cache, convolution history and
/// delayed value in the cache's state slots), the post-attention residual scaling fused with the next norm,
/// the float32 ``DeviceZayaRouter``, the experts (``MixtureOfExperts`` on the device: grouping, one grouped
/// product per projection) and the post-MLP residual scaling.
struct DeviceZayaLayer {
    let attention: DeviceCCADecoder
    let inputNorm: DeviceTensor, postAttentionNorm: DeviceTensor
    let postAttentionScaling: DeviceResidualScaling, postMLPScaling: DeviceResidualScaling
    let router: DeviceZayaRouter
    /// `[N, 2I, E]` and `[N, E, I]` in the storage precision, uploaded from their files as they are.
    let gateUp: DeviceTensor, down: DeviceTensor
    let epsilon: Float
    let precision: CUDAPrecision

    /// Uploads `layer`; the experts go straight from the mapped files to the device.
    /// A `hybrid_sliding` layer's attention config carries its window and its own RoPE parameters
    /// (``ZayaConfig/attention(_:)``), which the decode heads and the prologue's rotary take from it.
    /// - Throws: ``CUDAError``.
    init(_ layer: ZayaDecoderLayer, precision: CUDAPrecision, context: CUDAContext) throws {
        let config = layer.attention.config
        attention = try DeviceCCADecoder(config: config, weights: try config.upload(layer.attention.weights, precision: precision,
                                                                                 context: context), context: context)
        inputNorm = try context.upload(layer.inputNorm, .float32)
        postAttentionNorm = try context.upload(layer.postAttentionNorm, .float32)
        postAttentionScaling = try DeviceResidualScaling(layer.postAttentionScaling, context: context)
        postMLPScaling = try DeviceResidualScaling(layer.postMLPScaling, context: context)
        router = try DeviceZayaRouter(layer.router, context: context)
        gateUp = try context.upload(layer.gateUp, precision)
        down = try context.upload(layer.down, precision)
        (epsilon, self.precision) = (layer.epsilon, precision)
    }

    /// Runs the step's rows of `stream` (float32 `[rows, E]`, updated in place) through the layer, continuing
    /// each sequence's cache; returns the router state for the next layer.
    func decode(_ stream: DeviceTensor, routerState: DeviceTensor?, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer,
                context: CUDAContext) throws -> DeviceTensor {
        let normed = try ResidualScaling.merge(nil, scaling: nil, into: stream, norm: (inputNorm, epsilon), precision: precision,
                                               context: context).y!
        let attended = try attention.decode(normed, step: &step, cache: cache, context: context)
        let (mlpIn, routerIn) = try ResidualScaling.merge(attended, scaling: postAttentionScaling, into: stream,
                                                          norm: (postAttentionNorm, epsilon), precision: precision,
                                                          keepFloat: true, context: context)
        let (experts, weights, state) = try router.forward(routerIn!, previousState: routerState, context: context)
        let mixed = try MixtureOfExperts.forward(mlpIn!, experts: experts, weights: weights, gateUp: gateUp, down: down,
                                                 hostReads: step.allowsHostReads, context: context)
        try ResidualScaling.merge(mixed, scaling: postMLPScaling, into: stream, norm: nil, precision: precision, context: context)
        return state
    }
}

/// A ZAYA checkpoint the GPU path does not run (the CPU path, `--device cpu`, does).
public enum ZayaGPUError: Error, CustomStringConvertible, Equatable {
    case maskNotRightPadded(sequence: Int)

    public var description: String {
        switch self {
        case let .maskNotRightPadded(sequence):
            return "attention_mask row \(sequence) has padding before a token; on the GPU each sequence's tokens must come first "
                + "(right padding), or run with --device cpu"
        }
    }
}
