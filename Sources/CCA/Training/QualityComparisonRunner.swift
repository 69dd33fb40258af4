/// The outcome of one finished run of a ``QualityComparison``, saved as `result.json` in the run's directory.
public struct QualityRunResult: Codable, Sendable, Equatable {
    public var name: String
    public var arm: String
    public var seed: UInt64
    /// The model trained (vocabulary included) and the shared settings: a rerun reuses the result only when both agree.
    public var config: LanguageModelConfig
    public var settings: QualityComparison.Settings
    public var parameterCount: Int
    /// Training tokens per second over the updates of the process that finished the run.
    public var tokensPerSecond: Double
    /// One record per update; validation losses every ``QualityComparison/Settings/evaluationInterval`` updates.
    public var history: [LossRecord]

    /// The measured validation losses by step.
    public var validationCurve: [(step: Int, loss: Double)] {
        history.compactMap { record in record.validationLoss.map { (record.step, $0) } }
    }
}

extension QualityComparison {
    public static let resultFileName = "result.json"

    /// What a rerun does with a run's directory.
    enum RunState: Equatable {
        /// Finished with this plan's model and settings: reused as it is.
        case done(QualityRunResult)
        /// A checkpoint of this run part of the way: training continues from it.
        case resume
        /// Nothing usable: trained from the start (replacing what is there).
        case start
    }

    /// The directory of `run` under the comparison's output directory.
    public static func directory(of run: Run, in outDirectory: String) -> String { outDirectory + "/runs/" + run.name }

    /// Whether `run` is finished, can continue, or must start, judging by what `directory` holds.
    func state(of run: Run, in directory: String) -> RunState {
        let resultPath = directory + "/" + Self.resultFileName
        if let bytes = try? readFile(resultPath, limit: Checkpoint.maxJSONBytes),
           let result = try? JSON.decode(QualityRunResult.self, from: bytes, source: resultPath),
           result.config == run.arm.config, result.settings == settings, result.seed == run.seed,
           result.history.count == settings.steps {
            return .done(result)
        }
        let checkpointPath = directory + "/" + Checkpoint.fileName
        guard let bytes = try? readFile(checkpointPath, limit: Checkpoint.maxJSONBytes),
              let checkpoint = try? Checkpoint.decode(bytes, path: checkpointPath) else { return .start }
        let (saved, schedule) = (checkpoint.settings, checkpoint.schedule)
        let same = checkpoint.model == run.arm.config && saved.seed == run.seed && saved.batchSize == settings.batchSize
            && saved.contextLength == settings.contextLength && saved.dataChecksum == settings.dataChecksum
            && saved.evaluationInterval == settings.evaluationInterval && saved.validationBatches == settings.validationBatches
            && schedule == LearningRateSchedule(peak: settings.learningRate, warmupSteps: settings.warmupSteps, totalSteps: settings.steps)
        return same && checkpoint.step < settings.steps ? .resume : .start
    }

    /// The options that train `run` on `dataPath` into `directory`, from the start or from its checkpoint.
    func trainingOptions(_ run: Run, dataPath: String, directory: String, resume: Bool) -> TrainingOptions {
        var options = TrainingOptions()
        if resume {
            options.resumeDirectory = directory
            return options
        }
        (options.model, options.preset, options.dataPath, options.seed) = (run.arm.config, settings.preset, dataPath, run.seed)
        (options.steps, options.batchSize, options.contextLength) = (settings.steps, settings.batchSize, settings.contextLength)
        (options.learningRate, options.warmupSteps) = (settings.learningRate, settings.warmupSteps)
        (options.evaluationInterval, options.validationBatches) = (settings.evaluationInterval, settings.validationBatches)
        // A checkpoint at each validation lets an interrupted comparison lose little; the models are small.
        (options.saveInterval, options.outDirectory, options.overwrite) = (settings.evaluationInterval, directory, true)
        return options
    }

    /// Trains every run of the plan that `outDirectory` holds no result for, continues those it holds a
    /// checkpoint of, and returns the results of all runs in plan order. After each run, the CSV, the tables
    /// and the plots in `outDirectory` are rewritten (``QualityComparisonReport``).
    ///
    /// - Parameters:
    ///   - dataPath: what `cca train --data` reads: a token directory (with its tokenizer) or a text file.
    ///   - engine: makes the engine the updates run on (``TrainingOptions/engine``).
    ///   - progress: where one progress line over the whole comparison goes (steps of all runs, with ETA).
    public func run(dataPath: String, outDirectory: String,
                    engine: @escaping @Sendable (LanguageModel<Float>, AdamW<Float>) throws -> any TrainingEngine,
                    progress: ProgressReporter.Output?) throws -> [QualityRunResult] {
        do { try createDirectory(outDirectory + "/runs") } catch { throw TrainingError.cannotWrite(path: outDirectory, reason: "\(error)") }
        let runs = self.runs
        let states = runs.map { state(of: $0, in: Self.directory(of: $0, in: outDirectory)) }
        let finishedSteps = states.filter { if case .done = $0 { true } else { false } }.count * settings.steps
        let reporter = progress.map {
            ProgressReporter("bench quality", total: Double(runs.count * settings.steps), unit: "steps", completed: Double(finishedSteps), output: $0)
        }
        var results: [QualityRunResult] = states.compactMap { if case let .done(result) = $0 { result } else { nil } }
        var stepsBefore = 0
        for (index, (run, state)) in zip(runs, states).enumerated() {
            defer { stepsBefore += settings.steps }
            if case .done = state { continue }
            let directory = Self.directory(of: run, in: outDirectory)
            var options = trainingOptions(run, dataPath: dataPath, directory: directory, resume: state == .resume)
            options.engine = engine
            let (label, offset) = ("\(run.name) (\(index + 1)/\(runs.count))", Double(stepsBefore))
            options.onStep = { record in
                reporter?.update(done: offset + Double(record.step),
                                 status: label + (record.validationLoss.map { ", val " + NumberFormatting.fixed($0, 4) } ?? ""))
            }
            let summary = try Trainer.run(options)
            let result = QualityRunResult(name: run.name, arm: run.arm.name, seed: run.seed, config: summary.config, settings: settings,
                                          parameterCount: summary.parameterCount, tokensPerSecond: summary.tokensPerSecond,
                                          history: summary.history)
            do { try writeAtomically(try JSON.encode(result), to: directory + "/" + Self.resultFileName) } catch {
                throw TrainingError.cannotWrite(path: directory + "/" + Self.resultFileName, reason: "\(error)")
            }
            results.append(result)
            try QualityComparisonReport(plan: self, results: results).write(in: outDirectory)
        }
        reporter?.finish()
        let ordered = runs.compactMap { run in results.first { $0.name == run.name } }
        try QualityComparisonReport(plan: self, results: ordered).write(in: outDirectory)
        return ordered
    }
}
