/// Training on the GPU: the model resident as a ``DeviceLanguageModel`` (compute copy in `precision`,
/// float32 master weights and AdamW moments), global-norm clipping and one fused AdamW launch on the device.
///
/// The ``Trainer`` loop is the CPU's. A step queues the forward and backward passes, then reads the loss
/// (the one wait of the step) and, only when it is finite, queues the clipping norm and the update, so that
/// a diverging step leaves the weights as they were, as on the CPU. ``snapshot()`` downloads the master
/// weights and moments into the CPU types, so checkpoints are the CPU's and resume on either device.
public struct CUDATrainingEngine: TrainingEngine {
    public let precision: CUDAPrecision
    /// The measured bfloat16 matrix-product rate of the GPU (see ``init(model:optimizer:precision:measurePeak:)``).
    public let peakFLOPs: Double?
    let context: CUDAContext
    var model: DeviceLanguageModel
    /// The hyperparameters and step count; the moments live on the device.
    private(set) var optimizer: AdamW<Float>

    /// Uploads `model` and the moments of `optimizer` (none before its first step).
    /// - Parameter measurePeak: time a large bfloat16 product first, for the model-FLOPs utilisation of the
    ///   progress line.
    /// - Throws: ``CUDAError`` without a usable GPU or for an attention kind without a GPU layer,
    ///   ``CUDATrainingError/outOfMemory(operation:bytesInUse:)``, ``WeightError`` for moments that do not
    ///   fit the parameters.
    public init(model: LanguageModel<Float>, optimizer: AdamW<Float>, precision: CUDAPrecision = .bfloat16,
                measurePeak: Bool = true) throws {
        let context = try CUDAContext.shared()
        (self.context, self.precision, self.optimizer) = (context, precision, optimizer)
        (self.model, peakFLOPs) = try Self.guarded("uploading the model", context) {
            let device = try DeviceLanguageModel(config: model.config, parameters: model.parameters, precision: precision, context: context)
            try device.parameters.upload(optimizer.firstMoments, into: .firstMoments, context: context)
            try device.parameters.upload(optimizer.secondMoments, into: .secondMoments, context: context)
            return (device, measurePeak ? try context.measuredBFloat16Peak() : nil)
        }
    }

    public mutating func step(_ batch: TrainingBatch, rate: Double, clipNorm: Double) throws -> Double {
        var optimizer = self.optimizer
        let (model, context) = (self.model, self.context)
        let loss = try Self.guarded("a training step", context) { () -> Float in
            try model.parameters.zeroGradients(context: context)
            let (losses, counted) = try model.queueLoss(batch, backward: true, context: context)
            let loss = try CrossEntropy.meanLoss(losses, countedRows: counted, context: context)
            guard loss.isFinite else { return loss }
            let clipping = try GradientClipping.norm(of: model.parameters.tensor(.gradients), maxNorm: Float(clipNorm), context: context)
            try optimizer.update(model.parameters, rate: Float(rate), clipping: clipping, context: context)
            return loss
        }
        self.optimizer = optimizer
        return Double(loss)
    }

    public func loss(_ batch: TrainingBatch) throws -> Double {
        let (model, context) = (self.model, self.context)
        return Double(try Self.guarded("a validation pass", context) {
            let (losses, counted) = try model.queueLoss(batch, backward: false, context: context)
            return try CrossEntropy.meanLoss(losses, countedRows: counted, context: context)
        })
    }

    public func snapshot() throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>) {
        let (model, context) = (self.model, self.context)
        var optimizer = self.optimizer
        let master = try Self.guarded("downloading the model", context) { () -> [String: Tensor<Float>] in
            // Before the first update the moments are absent, as in a fresh CPU optimizer.
            if optimizer.step > 0 {
                optimizer.firstMoments = try model.parameters.download(.firstMoments, context: context)
                optimizer.secondMoments = try model.parameters.download(.secondMoments, context: context)
            }
            return try model.parameters.download(.master, context: context)
        }
        return (try LanguageModel(config: model.config, parameters: master), optimizer)
    }

    /// Device bytes in use now and the most since the last ``resetPeakMemory()``.
    public var memory: (inUse: Int, peak: Int) { (context.allocator.bytesInUse, context.allocator.peakBytesInUse) }

    /// Starts a new peak-memory measurement.
    public func resetPeakMemory() { context.allocator.resetPeak() }

    /// The most device memory this process has held at once (weights, master copy, moments, gradients and
    /// activations), for the summary of a run; nil when no GPU context was made.
    public static var processPeakMemory: Int? { (try? CUDAContext.shared())?.allocator.peakBytesInUse }

    /// `body` inside the context, with CUDA failures as ``CUDATrainingError``s naming `operation`.
    private static func guarded<R>(_ operation: String, _ context: CUDAContext, _ body: () throws -> R) throws -> R {
        do { return try context.exclusive(body) } catch {
            throw CUDATrainingError.wrapping(error, in: operation, bytesInUse: context.allocator.bytesInUse)
        }
    }
}
