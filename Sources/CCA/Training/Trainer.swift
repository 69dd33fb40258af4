#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `cca train` runs; every field has the command-line default.
public struct TrainingOptions: Sendable {
    public var attention: AttentionKind = .cca
    public var preset: LanguageModelConfig.Preset = .tiny
    /// A UTF-8 text file to learn (byte tokens); nil for the built-in associative recall task.
    public var dataPath: String?
    /// Total updates of the schedule; nil for the preset's.
    public var steps: Int?
    public var outDirectory: String?
    public var resumeDirectory: String?
    public var convolutions = 2, qkMean = true, valueShift = true
    public var seed: UInt64 = 0
    /// Widen or narrow the MLP so the model has the MHA model's parameter count (fair comparisons).
    public var matchParameters = true
    /// Stop after this many updates while keeping the schedule of ``steps``: an interruption, for tests.
    public var stopAfter: Int?
    /// Called with progress text (a line ending in `\r` on a terminal, or `\n`); nil for silence.
    public var progress: (@Sendable (String) -> Void)?

    public init() {}

    /// The loss of guessing uniformly on the built-in recall task of `preset`.
    public static func recallChanceLoss(_ preset: LanguageModelConfig.Preset) -> Double {
        Trainer.Hyperparameters.of(preset).task.chanceLoss
    }
}

/// The outcome of a training run.
public struct TrainingSummary: Sendable {
    public var config: LanguageModelConfig
    public var parameterCount: Int
    public var history: [LossRecord]
    /// Training tokens per second over the updates this run did.
    public var tokensPerSecond: Double
}

/// The training loop: AdamW, warmup + cosine schedule, global-norm clipping, periodic validation and
/// atomic checkpoints that resume bit-exactly.
public enum Trainer {
    /// Batch size, task and schedule of a preset.
    struct Hyperparameters {
        var batchSize: Int, steps: Int, peakRate: Double, warmup: Int, textLength: Int
        var task: AssociativeRecall
        var evaluationInterval: Int, checkpointInterval: Int
        let weightDecay: Float = 0.01, clipNorm: Float = 1, validationBatches = 4

        static func of(_ preset: LanguageModelConfig.Preset) -> Hyperparameters {
            switch preset {
            case .micro: Hyperparameters(batchSize: 8, steps: 80, peakRate: 2e-2, warmup: 8, textLength: 16,
                                         task: AssociativeRecall(pairs: 2, queries: 2, keyCount: 4, valueCount: 4),
                                         evaluationInterval: 40, checkpointInterval: 40)
            case .tiny: Hyperparameters(batchSize: 16, steps: 300, peakRate: 1e-2, warmup: 20, textLength: 32,
                                        task: AssociativeRecall(pairs: 4, queries: 4, keyCount: 8, valueCount: 8),
                                        evaluationInterval: 50, checkpointInterval: 100)
            case .small: Hyperparameters(batchSize: 16, steps: 600, peakRate: 3e-3, warmup: 50, textLength: 128,
                                         task: AssociativeRecall(pairs: 16, queries: 16, keyCount: 24, valueCount: 16),
                                         evaluationInterval: 100, checkpointInterval: 200)
            case .gpt2Small, .gpt2Medium: Hyperparameters(batchSize: 16, steps: 2000, peakRate: 6e-4, warmup: 100, textLength: 1024,
                                                          task: AssociativeRecall(pairs: 24, queries: 24, keyCount: 26, valueCount: 26),
                                                          evaluationInterval: 200, checkpointInterval: 500)
            case .wide: Hyperparameters(batchSize: 1, steps: 1000, peakRate: 3e-4, warmup: 100, textLength: 8192,
                                        task: AssociativeRecall(pairs: 24, queries: 24, keyCount: 26, valueCount: 26),
                                        evaluationInterval: 200, checkpointInterval: 500)
            }
        }
    }

    /// The model config a run with `options` trains.
    public static func modelConfig(_ options: TrainingOptions) -> LanguageModelConfig {
        var config = LanguageModelConfig.preset(options.preset, attention: options.attention)
        (config.convolutions, config.qkMean, config.valueShift) = (options.convolutions, options.qkMean, options.valueShift)
        guard options.matchParameters, options.attention != .mha else { return config }
        return config.matchingParameterCount(LanguageModelConfig.preset(options.preset, attention: .mha).parameterCount)
    }

    @discardableResult
    public static func run(_ options: TrainingOptions) throws -> TrainingSummary {
        let hyper = Hyperparameters.of(options.preset)
        let data: TrainingData = try options.dataPath.map { try .open($0, length: hyper.textLength) } ?? .recall(hyper.task)
        var config = modelConfig(options)
        config.vocabSize = data.vocabSize
        try config.validate()
        let schedule = LearningRateSchedule(peak: hyper.peakRate, warmupSteps: hyper.warmup, totalSteps: options.steps ?? hyper.steps)
        var fresh = Checkpoint(model: config, schedule: schedule, batchSize: hyper.batchSize, seed: options.seed, step: 0,
                               history: [], weightsFile: "", weightsBytes: 0)
        var model = try LanguageModel<Float>(config: config, seed: options.seed)
        var optimizer = AdamW<Float>(weightDecay: hyper.weightDecay)
        if let resume = options.resumeDirectory {
            let loaded = try Checkpoint.load(directory: resume)
            let saved = loaded.checkpoint
            guard saved.model == config, saved.schedule == schedule, saved.batchSize == hyper.batchSize, saved.seed == options.seed else {
                throw TrainingError.configMismatch(checkpoint: describe(saved), requested: describe(fresh))
            }
            (fresh, model, optimizer) = (saved, loaded.model, loaded.optimizer)
            optimizer.weightDecay = hyper.weightDecay
        }
        var checkpoint = fresh
        let outDirectory = options.outDirectory ?? options.resumeDirectory
        let last = min(schedule.totalSteps, options.stopAfter ?? schedule.totalSteps)
        let tokensPerStep = hyper.batchSize * data.length
        let clock = ContinuousClock()
        let started = clock.now, firstStep = checkpoint.step
        while checkpoint.step < last {
            let step = checkpoint.step
            let batch = data.batch(step, of: .train, size: hyper.batchSize, seed: options.seed)
            let (loss, gradients) = try model.lossAndGradients(inputs: batch.inputs, targets: batch.targets, layout: batch.layout())
            var grads = gradients
            GradientClipping.clip(&grads, maxNorm: hyper.clipNorm)
            let rate = schedule.rate(at: step)
            try model.updateParameters { try optimizer.update(&$0, grads: grads, rate: Float(rate)) }
            checkpoint.step += 1
            var record = LossRecord(step: checkpoint.step, trainLoss: Double(loss), validationLoss: nil, learningRate: rate)
            if checkpoint.step % hyper.evaluationInterval == 0 || checkpoint.step == schedule.totalSteps {
                record.validationLoss = try validationLoss(model, data: data, hyper: hyper, seed: options.seed)
            }
            checkpoint.history.append(record)
            let elapsed = (clock.now - started).seconds, done = checkpoint.step - firstStep
            let rateOfTokens = Double(done * tokensPerStep) / max(elapsed, 1e-9)
            let eta = elapsed / Double(done) * Double(last - checkpoint.step)
            options.progress?(progressLine(record, of: last, tokensPerSecond: rateOfTokens, eta: eta))
            if let outDirectory, checkpoint.step % hyper.checkpointInterval == 0 || checkpoint.step == last {
                try save(checkpoint, model: model, optimizer: optimizer, directory: outDirectory)
            }
        }
        let elapsed = (clock.now - started).seconds
        return TrainingSummary(config: config, parameterCount: config.parameterCount, history: checkpoint.history,
                               tokensPerSecond: Double((checkpoint.step - firstStep) * tokensPerStep) / max(elapsed, 1e-9))
    }

    /// Mean loss over the validation batches, forward only.
    static func validationLoss(_ model: LanguageModel<Float>, data: TrainingData, hyper: Hyperparameters, seed: UInt64) throws -> Double {
        var total = 0.0
        for index in 0..<hyper.validationBatches {
            let batch = data.batch(index, of: .validation, size: hyper.batchSize, seed: seed)
            total += Double(try model.loss(inputs: batch.inputs, targets: batch.targets, layout: batch.layout()))
        }
        return total / Double(hyper.validationBatches)
    }

    static func save(_ checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>, directory: String) throws {
        try Checkpoint.save(checkpoint, model: model, optimizer: optimizer, directory: directory)
        let title = "\(checkpoint.model.attention.rawValue) — \(checkpoint.model.parameterCount) parameters"
        try writeAtomically(Array(LossCurve.csv(checkpoint.history).utf8), to: directory + "/loss.csv")
        try writeAtomically(Array(LossCurve.svg(checkpoint.history, title: title).utf8), to: directory + "/loss.svg")
    }

    static func describe(_ checkpoint: Checkpoint) -> String {
        let m = checkpoint.model
        return "\(m.attention.rawValue) E=\(m.hiddenSize) layers=\(m.layers) mlp=\(m.intermediateSize) conv=\(m.convolutions) "
            + "qk_mean=\(m.qkMean) value_shift=\(m.valueShift) steps=\(checkpoint.schedule.totalSteps) "
            + "batch=\(checkpoint.batchSize) seed=\(checkpoint.seed)"
    }

    static func progressLine(_ record: LossRecord, of total: Int, tokensPerSecond: Double, eta: Double) -> String {
        let validation = record.validationLoss.map { "  val " + NumberFormatting.fixed($0, 4) } ?? ""
        let terminal = isatty(STDOUT_FILENO) != 0
        let line = "step \(record.step)/\(total)  loss " + NumberFormatting.fixed(record.trainLoss, 4) + validation
            + "  " + NumberFormatting.fixed(tokensPerSecond, 0) + " tok/s  ETA " + NumberFormatting.fixed(eta, 0) + "s"
        return terminal ? "\r" + line + "   " : line + "\n"
    }
}
