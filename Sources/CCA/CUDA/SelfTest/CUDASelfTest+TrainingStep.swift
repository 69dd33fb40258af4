extension CUDASelfTest {
    /// Whole small language models of every attention kind trained on the GPU (``CUDATrainingEngine``)
    /// against the CPU (``CPUTrainingEngine`` and ``LanguageModel/lossAndGradients(inputs:targets:layout:)``)
    /// from the same parameters and batches: the loss, every parameter's gradient, and every parameter and
    /// AdamW moment (the second as its square root) after one clipped update; then three steps with a
    /// resume after two, once on the GPU and once from the GPU's snapshot on the CPU, and the validation
    /// loss (the forward pass alone) after them. The cross-entropy runs in chunks of 20 rows, so that
    /// chunk boundaries fall inside the batch, and some targets are ignored, as the recall task and packed
    /// corpora have them. CCA and MLA need their GPU layers' backward passes; until those exist their
    /// cases fail with the reason.
    static var trainingStepCases: [Case] {
        AttentionKind.allCases.flatMap { kind in [
            Case(name: "training step, gradients, AdamW: \(kind.rawValue) model E64 L2", bfloat16Tolerance: trainingCheckBFloat16Tolerance) {
                context, precision in try trainingStepComparison(kind, trainingCheckBatches(count: 1)[0], context, precision)
            },
            Case(name: "three steps with a resume, GPU and GPU→CPU: \(kind.rawValue)", bfloat16Tolerance: trainingCheckBFloat16Tolerance) {
                _, precision in
                let (model, batches) = (try trainingCheckModel(kind, precision), trainingCheckBatches(count: 3))
                func train(_ engine: inout any TrainingEngine, _ steps: Range<Int>) throws -> [Float] {
                    try steps.map { Float(try engine.step(batches[$0], rate: trainingCheckRate, clipNorm: trainingCheckClip)) }
                }
                var cpu: any TrainingEngine = CPUTrainingEngine(model: model, optimizer: trainingCheckOptimizer)
                let cpuLosses = try train(&cpu, 0..<3)
                var gpu: any TrainingEngine = try trainingCheckEngine(model, trainingCheckOptimizer, precision)
                var losses = try train(&gpu, 0..<2)
                let (saved, optimizer) = try gpu.snapshot()
                var resumedOnGPU: any TrainingEngine = try trainingCheckEngine(saved, optimizer, precision)
                var resumedOnCPU: any TrainingEngine = CPUTrainingEngine(model: saved, optimizer: optimizer)
                losses += try train(&resumedOnGPU, 2..<3)
                let cpuResumedLoss = try train(&resumedOnCPU, 2..<3)
                let reference = try cpu.snapshot().model.parameters
                let names = reference.keys.sorted()
                let (onGPU, onCPU) = (try resumedOnGPU.snapshot().model.parameters, try resumedOnCPU.snapshot().model.parameters)
                // The validation loss: the forward pass alone, after the updates.
                let validation = (try resumedOnGPU.loss(batches[0]), try cpu.loss(batches[0]))
                return [(Tensor(checked: [3], losses), Tensor(checked: [3], cpuLosses)),
                        (Tensor(checked: [1], cpuResumedLoss), Tensor(checked: [1], [cpuLosses[2]])),
                        (Tensor(checked: [1], [Float(validation.0)]), Tensor(checked: [1], [Float(validation.1)]))]
                    + names.map { (onGPU[$0]!, reference[$0]!) } + names.map { (onCPU[$0]!, reference[$0]!) }
            },
        ] }
    }

    /// One GPU training step on `batch` against the CPU's, from the same parameters: the loss, every
    /// parameter's gradient, and every parameter and AdamW moment (the second as its square root) after the
    /// clipped update.
    static func trainingStepComparison(_ kind: AttentionKind, _ batch: TrainingBatch, _ context: CUDAContext,
                                       _ precision: CUDAPrecision) throws -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        let model = try trainingCheckModel(kind, precision)
        var gpu = try trainingCheckEngine(model, trainingCheckOptimizer, precision)
        let gpuLoss = try gpu.step(batch, rate: trainingCheckRate, clipNorm: trainingCheckClip)
        let gradients = try context.exclusive { try gpu.model.parameters.download(.gradients, context: context) }
        let (gpuModel, gpuOptimizer) = try gpu.snapshot()

        let (cpuLoss, cpuGradients) = try model.lossAndGradients(inputs: batch.inputs, targets: batch.targets, layout: try batch.layout())
        var cpu = CPUTrainingEngine(model: model, optimizer: trainingCheckOptimizer)
        _ = try cpu.step(batch, rate: trainingCheckRate, clipNorm: trainingCheckClip)
        let names = model.parameters.keys.sorted()
        return [(Tensor(checked: [1], [Float(gpuLoss)]), Tensor(checked: [1], [cpuLoss]))]
            + names.map { (gradients[$0]!, cpuGradients[$0]!) }
            + names.map { (gpuModel.parameters[$0]!, cpu.model.parameters[$0]!) }
            + names.map { (gpuOptimizer.firstMoments[$0]!, cpu.optimizer.firstMoments[$0]!) }
            // √v, the scale the update divides by: relative errors as the gradients', not twice theirs.
            + names.map { (squareRoots(gpuOptimizer.secondMoments[$0]!), squareRoots(cpu.optimizer.secondMoments[$0]!)) }
    }

    static func squareRoots(_ tensor: Tensor<Float>) -> Tensor<Float> {
        var roots = tensor
        roots.storage = tensor.storage.map { $0.squareRoot() }
        return roots
    }

    /// AdamW as trained, but with ε = 1e-4: Adam's first update is ±rate for any gradient well above ε (its
    /// sign), so with the default 1e-8 a gradient at rounding level, whose sign the two sides may disagree on,
    /// would move its weight by 2·rate between them; above 1e-4 both take the same step.
    static var trainingCheckOptimizer: AdamW<Float> {
        var optimizer = AdamW<Float>(weightDecay: 0.01)
        optimizer.epsilon = 1e-4
        return optimizer
    }

    /// Whole bfloat16 models round every activation and gradient they store: two layers of forward and
    /// backward give a few percent at the largest element where one operation gives well under 2e-2.
    static let trainingCheckBFloat16Tolerance: Float = 6e-2

    /// A learning rate and clipping norm at which the first update is clipped and small against the weights.
    static let trainingCheckRate = 1e-3, trainingCheckClip = 0.5

    /// Two layers of E = 64, 4 heads of 16, a 61-token vocabulary; untied for GQA so that both heads are
    /// checked; parameters rounded to what `precision` stores, so that both sides start alike.
    static func trainingCheckModel(_ kind: AttentionKind, _ precision: CUDAPrecision) throws -> LanguageModel<Float> {
        let config = LanguageModelConfig(attention: kind, vocabSize: 61, hiddenSize: 64, layers: 2, heads: 4, headDim: 16,
                                         intermediateSize: 96, tiedEmbeddings: kind != .gqa)
        let model = try LanguageModel<Float>(config: config, seed: 7)
        return try LanguageModel(config: config, parameters: model.parameters.mapValues { representable($0, precision) })
    }

    /// Batches of 2 rows of 24 tokens; every fifth target is ignored.
    static func trainingCheckBatches(count: Int) -> [TrainingBatch] {
        (0..<count).map { index in
            var random = SplitMix64(seed: 100 + UInt64(index))
            let inputs = (0..<48).map { _ in Int(random.next() % 61) }
            let targets = (0..<48).map { $0 % 5 == 4 ? CrossEntropy.ignored : Int(random.next() % 61) }
            return TrainingBatch(inputs: inputs, targets: targets, lengths: [24, 24])
        }
    }

    /// The GPU engine with the cross-entropy in chunks of 20 rows.
    static func trainingCheckEngine(_ model: LanguageModel<Float>, _ optimizer: AdamW<Float>, _ precision: CUDAPrecision) throws
        -> CUDATrainingEngine {
        var engine = try CUDATrainingEngine(model: model, optimizer: optimizer, precision: precision, measurePeak: false)
        engine.model.chunkElements = 20 * model.config.vocabSize
        return engine
    }
}
