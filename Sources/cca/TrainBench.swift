import ArgumentParser
import CCA

/// Trains every attention kind on the same recall data, seed and schedule, and compares speed and loss.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train MHA, GQA, MLA, CCA and CCGQA on the same recall data and seed; print tokens/s and final validation loss.",
        discussion: "At the small preset the full schedule of all five kinds takes about 7 minutes on 2 cores (release build).")

    @Option(help: "Model size.") var preset: LanguageModelConfig.Preset = .small
    @Option(help: "Optimizer steps per kind (default: the preset's full schedule).") var steps: Int?
    @Option(help: "Random seed (weights and data), the same for every kind.") var seed: UInt64 = 0

    func validate() throws {
        var options = TrainingOptions()
        options.steps = steps
        try validating { try options.validate() }
    }

    func run() throws {
        print("CPU: \(coreCount) cores, matrix products by \(MatrixMultiply.backendName); preset \(preset.rawValue), seed \(seed)")
        let chance = TrainingOptions.recallChanceLoss(preset)
        let clock = ContinuousClock()
        var rows: [[String]] = []
        for kind in AttentionKind.allCases {
            var options = TrainingOptions()
            (options.attention, options.preset, options.steps, options.seed) = (kind, preset, steps, seed)
            options.progress = .standardError
            let start = clock.now
            let summary = try Trainer.run(options)
            let seconds = (clock.now - start).seconds
            let validation = summary.history.last?.validationLoss ?? .nan
            rows.append([kind.rawValue, "\(summary.parameterCount)", format(summary.tokensPerSecond),
                         NumberFormatting.fixed(validation, 4), NumberFormatting.fixed(chance, 4), format(seconds) + " s"])
        }
        printTable(["attention", "parameters", "train tok/s", "final val loss", "chance loss", "wall time"], rows)
    }
}
