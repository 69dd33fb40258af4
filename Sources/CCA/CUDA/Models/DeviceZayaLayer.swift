/// One ``ZayaDecoderLayer`` on the GPU, over the float32 residual stream and the layer's share of the paged
/// decode cache: the input norm, CCGQA through ``DeviceCCADecoder`` (latent cache, convolution history and
/// delayed value in the cache's state slots), the post-attention residual scaling fused with the next norm,
/// the float32 ``DeviceZayaRouter``, the experts (``MixtureOfExperts`` on the device) and the post-MLP residual
/// scaling. A decode step's few rows take the few-row expert kernels, whose down product also merges into the
/// stream and writes the next layer's input norm; more rows group by expert and merge in a launch of their own.
struct DeviceZayaLayer {
    let attention: DeviceCCADecoder
    let inputNorm: DeviceTensor, postAttentionNorm: DeviceTensor
    let postAttentionScaling: DeviceResidualScaling, postMLPScaling: DeviceResidualScaling
    let router: DeviceZayaRouter
    /// `[N, 2I, E]` and `[N, E, I]` in the storage precision, uploaded from their files as they are.
    let gateUp: DeviceTensor, down: DeviceTensor
    let epsilon: Float
    let precision: CUDAPrecision
    /// One int in which the few-row down product counts its finished blocks (0 between launches), so that its
    /// last block writes the next layer's input norm (``MixtureOfExperts/StreamMerge``).
    let blocksDone: DeviceBuffer

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
        blocksDone = try context.upload([Int32(0)])
    }

    /// Runs the step's rows of `stream` (float32 `[rows, E]`, updated in place) through the layer, continuing
    /// each sequence's cache. `normed` is the stream's input norm when the previous layer made it (nil: this
    /// layer makes it); with `nextNorm` (the next layer's input norm) the layer returns the merged stream's
    /// norm for it, with the router state for the next layer.
    func decode(_ stream: DeviceTensor, normed: DeviceTensor?, routerState: DeviceTensor?,
                nextNorm: (weight: DeviceTensor, epsilon: Float)?, step: inout DeviceDecodeStep, cache: DeviceDecodeCache.Layer,
                context: CUDAContext) throws -> (routerState: DeviceTensor, nextNormed: DeviceTensor?) {
        let normed = try normed ?? ResidualScaling.merge(nil, scaling: nil, into: stream, norm: (inputNorm, epsilon),
                                                         precision: precision, context: context).y!
        let attended = try attention.decode(normed, step: &step, cache: cache, context: context)
        let (mlpIn, routerIn) = try ResidualScaling.merge(attended, scaling: postAttentionScaling, into: stream,
                                                          norm: (postAttentionNorm, epsilon), precision: precision,
                                                          keepFloat: true, context: context)
        let (experts, weights, state) = try router.forward(routerIn!, previousState: routerState, context: context)
        let merge = MixtureOfExperts.StreamMerge(stream: stream, scaling: postMLPScaling,
                                                 norm: nextNorm.map { ($0.weight, $0.epsilon, blocksDone) })
        let nextNormed = try MixtureOfExperts.forward(mlpIn!, experts: experts, weights: weights, gateUp: gateUp, down: down,
                                                      merging: merge, hostReads: step.allowsHostReads, context: context)
        return (state, nextNormed)
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
