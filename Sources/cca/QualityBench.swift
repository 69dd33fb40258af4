import ArgumentParser
import CCA

/// `cca bench quality`: the report's quality comparison at a small scale (``QualityComparison``).
struct QualityBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quality",
        abstract: "Train MHA, GQA, MLA, CCA, CCGQA and CCA's ablation ladder at equal parameters on the same tokens and schedule, from several seeds.",
        discussion: """
        Writes OUT/curves.csv (every run's validation curve), OUT/summary.md (final validation loss mean ± sd over \
        seeds, parameters, KV cache per token, training FLOPs, tokens/s), OUT/validation.svg and OUT/ablation.svg, \
        and each run's checkpoint under OUT/runs. Rerunning with the same --out and settings skips the finished \
        runs and continues an interrupted one. Every run has the same learning rate, warmup and schedule.
        """)

    /// Where the updates run.
    enum Device: String, ExpressibleByArgument, CaseIterable { case cpu, cuda }

    @Option(help: "Where training runs: cpu (float32) or cuda (bfloat16 with float32 master weights).") var device: Device = .cpu
    @Option(help: "Model width and depth (the heads are split into at least 8 for CCGQA's Ckv = 8).") var preset: LanguageModelConfig.Preset = .tiny
    @Option(parsing: .unconditional, help: "Optimizer steps of every run (default: the preset's, 300 for tiny).") var steps: Int?
    @Option(help: "Seeds, comma-separated; every arm is trained from each.") var seeds: String = "1,2,3"
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Sequences per step (default: the preset's).") var batchSize: Int?
    @Option(name: .customLong("context"), parsing: .unconditional, help: "Tokens per training sequence (default: the preset's).")
    var contextLength: Int?
    @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Peak learning rate of every run (default: the preset's).")
    var learningRate: Double?
    @Option(parsing: .unconditional, help: "Warmup steps of every run (default: the preset's).") var warmup: Int?
    @Option(name: .customLong("eval-every"), parsing: .unconditional, help: "Steps between validation losses (default: a tenth of the run).")
    var evaluationInterval: Int?
    @Option(name: .customLong("validation-batches"), parsing: .unconditional, help: "Batches each validation loss averages (default 8).")
    var validationBatches: Int?
    @Option(help: "A token directory from `cca data prepare` (scripts/prepare_shakespeare.sh makes one), or a text file read as bytes.")
    var data: String
    @Option(help: "Output directory; rerunning with the same one resumes.") var out: String

    var seedList: [UInt64] { get throws {
        let parts = seeds.split(separator: ",", omittingEmptySubsequences: false).map { UInt64($0.trimmingCharacters(in: " ")) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--seeds must be whole numbers separated by commas, such as 1,2,3; got '\(seeds)'")
        }
        return parts.map { $0! }
    } }

    func validate() throws {
        _ = try seedList
        var options = TrainingOptions()
        (options.steps, options.batchSize, options.contextLength, options.learningRate) = (steps, batchSize, contextLength, learningRate)
        (options.warmupSteps, options.evaluationInterval, options.validationBatches) = (warmup, evaluationInterval, validationBatches)
        try validating { try options.validate() }
    }

    func run() throws {
        let engine = try trainingEngine()
        let data = try TrainingData.open(self.data, length: contextLength ?? QualityComparison.Settings.defaultContextLength(preset))
        let settings = QualityComparison.Settings.of(preset, data: data, steps: steps, batchSize: batchSize, learningRate: learningRate,
                                                     warmupSteps: warmup, evaluationInterval: evaluationInterval,
                                                     validationBatches: validationBatches)
        let plan = try QualityComparison(settings: settings, seeds: try seedList)
        print("\(plan.runs.count) runs (\(plan.arms.count) arms × \(plan.seeds.count) seeds) of \(settings.steps) steps on \(device.rawValue); "
              + "writing \(out)")
        let results = try plan.run(dataPath: self.data, outDirectory: out, engine: engine, progress: .standardError)
        print(QualityComparisonReport(plan: plan, results: results).markdown)
        print("Wrote \(out)/curves.csv, summary.md, validation.svg, ablation.svg")
    }

    /// Makes the training engine of `--device`.
    func trainingEngine() throws -> @Sendable (LanguageModel<Float>, AdamW<Float>) throws -> any TrainingEngine {
        switch device {
        case .cpu: return { CPUTrainingEngine(model: $0, optimizer: $1) }
        case .cuda: return { try CUDATrainingEngine(model: $0, optimizer: $1, precision: .bfloat16, measurePeak: false) }
        }
    }
}
