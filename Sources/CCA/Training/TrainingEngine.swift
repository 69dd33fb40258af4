/// Where the updates of a training run happen: the model and its optimizer state on one device. The
/// training loop (``Trainer``) is the same for every engine; only these steps differ.
public protocol TrainingEngine {
    /// One update on `batch`: the loss before it, then global-norm clipping at `clipNorm` and an AdamW step
    /// at learning rate `rate`.
    mutating func step(_ batch: TrainingBatch, rate: Double, clipNorm: Double) throws -> Double
    /// The mean loss on `batch`, with nothing kept for a backward pass.
    func loss(_ batch: TrainingBatch) throws -> Double
    /// The model and optimizer as they are now, on the CPU (what a checkpoint saves).
    func snapshot() throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>)
    /// The device's peak rate (FLOP/s) that the progress line's model-FLOPs utilisation is measured against;
    /// nil where none is known (the CPU engine).
    var peakFLOPs: Double? { get }
}

extension TrainingEngine {
    public var peakFLOPs: Double? { nil }
}

/// Training on the CPU: ``LanguageModel`` and ``AdamW`` in float32.
public struct CPUTrainingEngine: TrainingEngine {
    public private(set) var model: LanguageModel<Float>
    public private(set) var optimizer: AdamW<Float>

    public init(model: LanguageModel<Float>, optimizer: AdamW<Float>) { (self.model, self.optimizer) = (model, optimizer) }

    public mutating func step(_ batch: TrainingBatch, rate: Double, clipNorm: Double) throws -> Double {
        var (loss, grads) = try model.lossAndGradients(inputs: batch.inputs, targets: batch.targets, layout: batch.layout())
        guard loss.isFinite else { return Double(loss) }
        GradientClipping.clip(&grads, maxNorm: Float(clipNorm))
        var optimizer = self.optimizer
        try model.updateParameters { try optimizer.update(&$0, grads: grads, rate: Float(rate)) }
        self.optimizer = optimizer
        return Double(loss)
    }

    public func loss(_ batch: TrainingBatch) throws -> Double {
        Double(try model.loss(inputs: batch.inputs, targets: batch.targets, layout: batch.layout()))
    }

    public func snapshot() throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>) { (model, optimizer) }
}
