import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

/// Trains every attention kind on the same recall data, seed and schedule, and compares speed and loss.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train MHA, GQA, MLA, CCA and CCGQA on the same recall data and seed; print tokens/s and final validation loss.",
        discussion: "At the small preset the full schedule of all five kinds takes about 7 minutes on 2 cores.")

    @Option(help: "Model size: tiny or small.") var preset: String = "small"
    @Option(help: "Optimizer steps per kind (default: the preset's full schedule).") var steps: Int?
    @Option(help: "Random seed (weights and data), the same for every kind.") var seed: UInt64 = 0

    func run() throws {
        guard let size = LanguageModelConfig.Preset(rawValue: preset) else { throw ValidationError("unknown preset '\(preset)'") }
        print("CPU: \(coreCount) cores, matrix products by \(MatrixMultiply.backendName); preset \(preset), seed \(seed)")
        let chance = TrainingOptions.recallChanceLoss(size)
        let clock = ContinuousClock()
        let terminal = isatty(STDOUT_FILENO) != 0
        var rows: [[String]] = []
        for kind in AttentionKind.allCases {
            var options = TrainingOptions()
            (options.attention, options.preset, options.steps, options.seed) = (kind, size, steps, seed)
            // One status line per kind, overwritten in place on a terminal, so a long run shows it is alive.
            if terminal {
                options.progress = { text in
                    print("\r\(kind.rawValue): " + text.filter { !$0.isNewline }, terminator: "")
                    fflush(nil)
                }
            }
            let start = clock.now
            let summary = try Trainer.run(options)
            let seconds = (clock.now - start).seconds
            if terminal { print("") }
            let validation = summary.history.last?.validationLoss ?? .nan
            rows.append([kind.rawValue, "\(summary.parameterCount)", format(summary.tokensPerSecond),
                         NumberFormatting.fixed(validation, 4), NumberFormatting.fixed(chance, 4), format(seconds) + " s"])
        }
        printTable(["attention", "parameters", "train tok/s", "final val loss", "chance loss", "wall time"], rows)
    }
}
