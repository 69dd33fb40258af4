/// What `cca train` asks for. A setting left nil takes the preset's default in a new run, or the run's own
/// value when resuming (`--resume` needs no other flags; a flag that contradicts the run is an error).
public struct TrainingOptions: Sendable {
    /// Upper bounds of the settings, far above what a CPU run uses, so that no size arithmetic can overflow.
    public static let maxSteps = 100_000_000, maxBatchSize = 4096, maxContextLength = 65536
    /// Tokens in one batch (batch size × context length).
    public static let maxTokensPerStep = 1 << 20
    /// Bytes of a `--data` file (each byte becomes a token).
    public static let maxDataBytes = 256 << 20

    public var attention: AttentionKind?
    public var preset: LanguageModelConfig.Preset?
    /// A UTF-8 text file to learn (byte tokens, or ``tokenizerPath``'s), or a token directory made by
    /// `cca data prepare`; nil for the built-in associative recall task.
    public var dataPath: String?
    /// A `tokenizer.json` that encodes a ``dataPath`` text file, or that must be the one a token directory
    /// records; the run keeps it beside its weights. nil: the directory's own tokenizer, or bytes.
    public var tokenizerPath: String?
    /// The model to train instead of the one the preset and the ablation options give (a comparison's
    /// shapes); its vocabulary size is set from the data.
    public var model: LanguageModelConfig?
    /// Total updates of the schedule; when resuming, a larger number extends the run.
    public var steps: Int?
    /// Peak learning rate of the warmup + cosine schedule.
    public var learningRate: Double?
    public var batchSize: Int?
    /// Tokens per example of a `--data` text (the recall task's length is fixed by the task).
    public var contextLength: Int?
    public var warmupSteps: Int?
    /// Updates between checkpoints (one is always written at the end).
    public var saveInterval: Int?
    /// Updates between validation losses (one is always measured at the end), and the batches each averages.
    public var evaluationInterval: Int?, validationBatches: Int?
    public var convolutions: Int?, qkMean: Bool?, valueShift: Bool?
    public var seed: UInt64?
    /// Widen or narrow the MLP so the model has the MHA model's parameter count (fair comparisons).
    public var matchParameters: Bool?
    /// Where checkpoints, `loss.csv` and `loss.svg` go; nil with no resume directory: nothing is saved.
    public var outDirectory: String?
    /// A run directory to continue; it is also the output directory unless ``outDirectory`` names another.
    public var resumeDirectory: String?
    /// Replace the run already in ``outDirectory`` instead of refusing to.
    public var overwrite = false
    /// Stop after this many updates while keeping the schedule of ``steps``: an interruption, for tests.
    public var stopAfter: Int?
    /// Where the progress line goes; nil for silence.
    public var progress: ProgressReporter.Output?
    /// Called after each update with its record (a comparison's progress over all of its runs).
    public var onStep: (@Sendable (LossRecord) -> Void)?
    /// Makes the engine the updates run on from the starting model and optimizer: the CPU by default,
    /// the GPU with `CUDATrainingEngine` (`cca train --device cuda`).
    public var engine: @Sendable (LanguageModel<Float>, AdamW<Float>) throws -> any TrainingEngine = { CPUTrainingEngine(model: $0, optimizer: $1) }

    public init() {}

    /// The loss of guessing uniformly on the built-in recall task of `preset`.
    public static func recallChanceLoss(_ preset: LanguageModelConfig.Preset) -> Double {
        Trainer.Hyperparameters.of(preset).task.chanceLoss
    }

    /// Throws ``TrainingError/invalidOption(name:value:expected:)`` for the first given setting out of range.
    public func validate() throws {
        if let steps { try TrainingError.require("steps", steps, in: 1...Self.maxSteps) }
        if let batchSize { try TrainingError.require("batch size", batchSize, in: 1...Self.maxBatchSize) }
        if let contextLength { try TrainingError.require("context length", contextLength, in: 1...Self.maxContextLength) }
        if let warmupSteps { try TrainingError.require("warmup", warmupSteps, in: 0...(steps ?? Self.maxSteps)) }
        if let saveInterval { try TrainingError.require("save interval", saveInterval, in: 1...Self.maxSteps) }
        if let evaluationInterval { try TrainingError.require("evaluation interval", evaluationInterval, in: 1...Self.maxSteps) }
        if let validationBatches { try TrainingError.require("validation batches", validationBatches, in: 1...1000) }
        if let convolutions { try TrainingError.require("convolutions", convolutions, in: 0...2) }
        if let stopAfter { try TrainingError.require("stop after", stopAfter, in: 1...Self.maxSteps) }
        if let learningRate, !(learningRate.isFinite && learningRate > 0 && learningRate <= 10) {
            throw TrainingError.invalidOption(name: "learning rate", value: "\(learningRate)", expected: "a positive number of at most 10")
        }
    }
}

/// The outcome of a training run.
public struct TrainingSummary: Sendable {
    public var config: LanguageModelConfig
    public var parameterCount: Int
    public var history: [LossRecord]
    /// Training tokens per second over the updates this run did.
    public var tokensPerSecond: Double
    /// Where the checkpoint went; nil when nothing was saved.
    public var outDirectory: String?
    /// The opening of a validation text to sample a continuation of (``TrainingData/samplePrompt(count:seed:)``);
    /// nil for the recall task.
    public var samplePrompt: [Int]?
}

/// The training loop: AdamW, warmup + cosine schedule, global-norm clipping, periodic validation and
/// atomic checkpoints that resume bit-exactly, in a run directory locked against a second writer.
public enum Trainer {
    /// The defaults of a preset: batch size, task, schedule and intervals.
    struct Hyperparameters {
        var batchSize: Int, steps: Int, peakRate: Double, warmup: Int, textLength: Int
        var task: AssociativeRecall
        var evaluationInterval: Int, checkpointInterval: Int
        let weightDecay = 0.01, clipNorm = 1.0, validationBatches = 4

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

    /// The model config a new run with `options` trains.
    public static func modelConfig(_ options: TrainingOptions) -> LanguageModelConfig {
        let preset = options.preset ?? .tiny, attention = options.attention ?? .cca
        var config = LanguageModelConfig.preset(preset, attention: attention)
        (config.convolutions, config.qkMean, config.valueShift) = (options.convolutions ?? 2, options.qkMean ?? true, options.valueShift ?? true)
        guard options.matchParameters ?? true, attention != .mha else { return config }
        return config.matchingParameterCount(LanguageModelConfig.preset(preset, attention: .mha).parameterCount,
                                             multipleOf: preset.mlpWidthMultiple)
    }

    @discardableResult
    public static func run(_ options: TrainingOptions) throws -> TrainingSummary {
        try options.validate()
        let outPath = options.outDirectory ?? options.resumeDirectory
        if let outPath, outPath != options.resumeDirectory, !options.overwrite, RunDirectory.holdsRun(outPath) {
            throw TrainingError.runExists(directory: outPath, step: savedCheckpoint(in: outPath)?.step)
        }
        // Locked (and checked writable) before anything is loaded or trained.
        let run = try outPath.map(RunDirectory.init)
        run?.removeLeftovers(keeping: run.flatMap { savedCheckpoint(in: $0.path)?.weightsFile })
        do {
            return try train(options, in: run)
        } catch {
            run?.removeIfNothingSaved()
            throw error
        }
    }

    /// The run itself, once its directory (if any) is held.
    private static func train(_ options: TrainingOptions, in run: RunDirectory?) throws -> TrainingSummary {

        var (checkpoint, model, optimizer, data, tokenizer) = try options.resumeDirectory.map { try resumed(options, from: $0) } ?? fresh(options)
        if let run, let tokenizer {
            do { try tokenizer.write(in: run.path) } catch { throw TrainingError.cannotWrite(path: run.path, reason: "\(error)") }
        }
        var engine = try options.engine(model, optimizer)
        let settings = checkpoint.settings, schedule = checkpoint.schedule
        let last = min(schedule.totalSteps, options.stopAfter ?? schedule.totalSteps)
        let tokensPerStep = settings.batchSize * data.length
        let flopsPerToken = checkpoint.model.trainingFLOPsPerToken(length: data.length)
        let reporter = options.progress.map {
            ProgressReporter("train \(checkpoint.model.attention.rawValue)", total: Double(last), unit: "steps",
                             completed: Double(checkpoint.step), output: $0)
        }
        let clock = ContinuousClock()
        let started = clock.now, firstStep = checkpoint.step
        var lastValidation = checkpoint.history.last { $0.validationLoss != nil }?.validationLoss
        while checkpoint.step < last {
            let step = checkpoint.step
            let rate = schedule.rate(at: step)
            let loss = try engine.step(data.batch(step, of: .train, size: settings.batchSize, seed: settings.seed),
                                       rate: rate, clipNorm: settings.clipNorm)
            guard loss.isFinite else { throw TrainingError.diverged(step: step + 1, loss: loss) }
            checkpoint.step += 1
            var record = LossRecord(step: checkpoint.step, trainLoss: loss, validationLoss: nil, learningRate: rate)
            if checkpoint.step % settings.evaluationInterval == 0 || checkpoint.step == schedule.totalSteps {
                record.validationLoss = try validationLoss(engine, data: data, settings: settings)
                lastValidation = record.validationLoss
            }
            checkpoint.history.append(record)
            options.onStep?(record)
            let elapsed = (clock.now - started).seconds
            let tokensPerSecond = Double((checkpoint.step - firstStep) * tokensPerStep) / max(elapsed, 1e-9)
            reporter?.update(done: Double(checkpoint.step), status: "loss " + NumberFormatting.fixed(record.trainLoss, 4)
                             + (lastValidation.map { ", val " + NumberFormatting.fixed($0, 4) } ?? "")
                             + ", " + NumberFormatting.fixed(tokensPerSecond, 0) + " tok/s"
                             + (engine.peakFLOPs.map { ", MFU " + NumberFormatting.fixed(100 * tokensPerSecond * flopsPerToken / $0, 1) + "%" } ?? ""))
            if let run, checkpoint.step % settings.saveInterval == 0 || checkpoint.step == last {
                (model, optimizer) = try engine.snapshot()
                try save(checkpoint, model: model, optimizer: optimizer, in: run)
            }
        }
        reporter?.finish()
        let elapsed = (clock.now - started).seconds
        return TrainingSummary(config: checkpoint.model, parameterCount: checkpoint.model.parameterCount, history: checkpoint.history,
                               tokensPerSecond: Double((checkpoint.step - firstStep) * tokensPerStep) / max(elapsed, 1e-9),
                               outDirectory: run?.path, samplePrompt: data.samplePrompt(count: 16, seed: settings.seed))
    }

    private typealias State = (checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>, data: TrainingData,
                               tokenizer: RecordedTokenizer?)

    /// A new run: the preset's defaults with the given options applied.
    private static func fresh(_ options: TrainingOptions) throws -> State {
        let preset = options.preset ?? .tiny
        let hyper = Hyperparameters.of(preset)
        var config = options.model ?? modelConfig(options)
        let tokenizer = try newRunTokenizer(options)
        let data: TrainingData
        if let path = options.dataPath {
            data = try .open(path, length: options.contextLength ?? hyper.textLength, tokenizer: tokenizer?.tokenizer)
            try requireVocabulary(of: tokenizer, matches: data, path: path)
        } else {
            if let tokenizerPath = options.tokenizerPath {
                throw TrainingError.invalidOption(name: "tokenizer", value: tokenizerPath, expected: "--data with it (the recall task has its own tokens)")
            }
            if let length = options.contextLength, length != hyper.task.length {
                throw TrainingError.invalidOption(name: "context length", value: "\(length)",
                                                  expected: "the recall task's \(hyper.task.length) tokens; the context length is for --data text")
            }
            data = .recall(hyper.task)
        }
        config.vocabSize = data.vocabSize
        try config.validate()
        let steps = options.steps ?? hyper.steps
        let schedule = LearningRateSchedule(peak: options.learningRate ?? hyper.peakRate,
                                            warmupSteps: options.warmupSteps ?? min(hyper.warmup, steps), totalSteps: steps)
        let settings = TrainingSettings(
            preset: preset, matchParameters: options.matchParameters ?? true, dataPath: options.dataPath,
            dataBytes: data.byteCount, dataChecksum: data.checksum, tokenizerChecksum: tokenizer?.checksum, contextLength: data.length,
            batchSize: options.batchSize ?? hyper.batchSize, seed: options.seed ?? 0, weightDecay: hyper.weightDecay,
            clipNorm: hyper.clipNorm, evaluationInterval: options.evaluationInterval ?? hyper.evaluationInterval,
            saveInterval: options.saveInterval ?? hyper.checkpointInterval, validationBatches: options.validationBatches ?? hyper.validationBatches)
        try schedule.validate()
        try settings.validate()
        let checkpoint = Checkpoint(model: config, schedule: schedule, settings: settings, step: 0, history: [], weightsFile: "", weightsBytes: 0)
        return (checkpoint, try LanguageModel<Float>(config: config, seed: settings.seed),
                AdamW<Float>(weightDecay: Float(settings.weightDecay)), data, tokenizer)
    }

    /// The tokenizer of a new run: the one its token directory records, else the one ``TrainingOptions/tokenizerPath``
    /// names (the same file when both are there); nil for bytes.
    private static func newRunTokenizer(_ options: TrainingOptions) throws -> RecordedTokenizer? {
        let given = try options.tokenizerPath.map { path in
            do { return try RecordedTokenizer(contentsOf: path) } catch { throw TrainingError.unreadableTokenizer(path: path, reason: "\(error)") }
        }
        guard let dataPath = options.dataPath, isDirectory(dataPath) else { return given }
        let recorded: RecordedTokenizer?
        do { recorded = try RecordedTokenizer.load(in: dataPath) } catch {
            throw TrainingError.unreadableTokenizer(path: dataPath + "/" + RecordedTokenizer.fileName, reason: "\(error)")
        }
        if let given, let recorded, given.bytes != recorded.bytes {
            throw TrainingError.tokenizerMismatch(given: options.tokenizerPath ?? "", recorded: dataPath + "/" + RecordedTokenizer.fileName)
        }
        return recorded ?? given
    }

    /// Throws unless the tokens of `data` are the tokenizer's (a token directory made with another vocabulary).
    private static func requireVocabulary(of tokenizer: RecordedTokenizer?, matches data: TrainingData, path: String) throws {
        guard let tokenizer, tokenizer.tokenizer.vocabSize != data.vocabSize else { return }
        throw TrainingError.tokenizerVocabulary(path: path, tokenizer: tokenizer.tokenizer.vocabSize, data: data.vocabSize)
    }

    /// The run saved in `directory`, with ``TrainingOptions/steps`` and ``TrainingOptions/saveInterval``
    /// applied; any other option must agree with the run.
    private static func resumed(_ options: TrainingOptions, from directory: String) throws -> State {
        var (checkpoint, model, optimizer) = try Checkpoint.load(directory: directory)
        try requireAgreement(options, with: checkpoint)
        let tokenizer = try Checkpoint.recordedTokenizer(directory: directory, checkpoint: checkpoint)
        if let path = options.tokenizerPath {
            let given: RecordedTokenizer
            do { given = try RecordedTokenizer(contentsOf: path) } catch { throw TrainingError.unreadableTokenizer(path: path, reason: "\(error)") }
            guard given.checksum == checkpoint.settings.tokenizerChecksum else {
                throw TrainingError.tokenizerMismatch(given: path, recorded: directory + "/" + RecordedTokenizer.fileName)
            }
        }
        if let steps = options.steps, steps != checkpoint.schedule.totalSteps {
            guard steps > checkpoint.step else { throw TrainingError.cannotExtend(directory: directory, step: checkpoint.step, requested: steps) }
            // The cosine is stretched to the new total: the remaining steps follow the longer run's curve.
            checkpoint.schedule.totalSteps = steps
        } else if checkpoint.step >= checkpoint.schedule.totalSteps, options.stopAfter == nil {
            throw TrainingError.runFinished(directory: directory, steps: checkpoint.schedule.totalSteps)
        }
        if let interval = options.saveInterval { checkpoint.settings.saveInterval = interval }
        let settings = checkpoint.settings
        let data: TrainingData
        if let path = settings.dataPath {
            data = try .open(path, length: settings.contextLength, tokenizer: tokenizer?.tokenizer)
            if data.byteCount != settings.dataBytes || data.checksum != settings.dataChecksum {
                throw TrainingError.dataChanged(path: path, reason: "it has \(data.byteCount ?? 0) bytes, the run's had \(settings.dataBytes ?? 0), or its checksum differs")
            }
        } else {
            data = .recall(Hyperparameters.of(settings.preset).task)
            guard data.length == settings.contextLength else {
                throw TrainingError.corruptCheckpoint(path: directory + "/" + Checkpoint.fileName,
                                                      reason: "contextLength \(settings.contextLength) is not the recall task's \(data.length)")
            }
        }
        return (checkpoint, model, optimizer, data, tokenizer)
    }

    /// Throws ``TrainingError/configMismatch(checkpoint:requested:)`` listing every given option that differs from the run.
    private static func requireAgreement(_ options: TrainingOptions, with checkpoint: Checkpoint) throws {
        var differences: [(name: String, saved: String, asked: String)] = []
        func compare<T: Equatable>(_ name: String, _ asked: T?, _ saved: T) {
            if let asked, asked != saved { differences.append((name, "\(saved)", "\(asked)")) }
        }
        let (model, settings) = (checkpoint.model, checkpoint.settings)
        compare("attention", options.attention, model.attention)
        compare("preset", options.preset, settings.preset)
        compare("data", options.dataPath, settings.dataPath ?? "the built-in recall task")
        compare("learning rate", options.learningRate, checkpoint.schedule.peak)
        compare("warmup", options.warmupSteps, checkpoint.schedule.warmupSteps)
        compare("batch size", options.batchSize, settings.batchSize)
        compare("context length", options.contextLength, settings.contextLength)
        compare("convolutions", options.convolutions, model.convolutions)
        compare("qk mean", options.qkMean, model.qkMean)
        compare("value shift", options.valueShift, model.valueShift)
        compare("seed", options.seed, settings.seed)
        compare("match parameters", options.matchParameters, settings.matchParameters)
        guard differences.isEmpty else {
            throw TrainingError.configMismatch(checkpoint: differences.map { "\($0.name) \($0.saved)" }.joined(separator: ", "),
                                               requested: differences.map { "\($0.name) \($0.asked)" }.joined(separator: ", "))
        }
    }

    /// The checkpoint.json in `directory` when it decodes, for messages and for which weights file to keep.
    private static func savedCheckpoint(in directory: String) -> Checkpoint? {
        let path = directory + "/" + Checkpoint.fileName
        return (try? readFile(path, limit: Checkpoint.maxJSONBytes)).flatMap { try? Checkpoint.decode($0, path: path) }
    }

    /// Mean loss over the validation batches, forward only.
    static func validationLoss(_ engine: any TrainingEngine, data: TrainingData, settings: TrainingSettings) throws -> Double {
        var total = 0.0
        for index in 0..<settings.validationBatches {
            total += try engine.loss(data.batch(index, of: .validation, size: settings.batchSize, seed: settings.seed))
        }
        return total / Double(settings.validationBatches)
    }

    static func save(_ checkpoint: Checkpoint, model: LanguageModel<Float>, optimizer: AdamW<Float>, in run: RunDirectory) throws {
        try Checkpoint.save(checkpoint, model: model, optimizer: optimizer, in: run)
        let title = "\(checkpoint.model.attention.rawValue) — \(checkpoint.model.parameterCount) parameters"
        do {
            try writeAtomically(Array(LossCurve.csv(checkpoint.history).utf8), to: run.path + "/loss.csv")
            try writeAtomically(Array(LossCurve.svg(checkpoint.history, title: title).utf8), to: run.path + "/loss.svg")
        } catch { throw TrainingError.cannotWrite(path: run.path, reason: "\(error)") }
    }
}
