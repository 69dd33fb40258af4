import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

/// `cca train`: trains a small byte-level language model with one attention kind.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a decoder-only byte LM (built-in associative recall task by default) with one attention kind.")

    @Option(help: "Attention kind: mha, gqa, mla, cca or ccgqa.") var attention: String = "cca"
    @Option(help: "UTF-8 text file to learn as bytes (default: the built-in multi-query associative recall task).") var data: String?
    @Option(help: "Total optimizer steps (default: the preset's).") var steps: Int?
    @Option(help: "Directory for checkpoints, loss.csv and loss.svg.") var out: String?
    @Option(help: "Checkpoint directory to continue from (bit-exact).") var resume: String?
    @Option(name: .customLong("ablate-convolutions"), help: "CCA convolutions: 0, 1 or 2.") var convolutions: Int = 2
    @Flag(name: .customLong("no-qk-mean"), help: "Disable CCA's QK-mean skip path.") var noQKMean = false
    @Flag(name: .customLong("no-value-shift"), help: "Disable CCA's value shift.") var noValueShift = false
    @Option(help: "Model size: tiny or small.") var preset: String = "tiny"
    @Option(help: "Random seed (weights and data).") var seed: UInt64 = 0
    @Flag(name: .customLong("no-match-parameters"), help: "Keep the preset MLP width instead of matching MHA's parameter count.")
    var noMatchParameters = false

    func run() throws {
        var options = TrainingOptions()
        guard let kind = AttentionKind(rawValue: attention) else { throw ValidationError("unknown attention '\(attention)'") }
        guard let size = LanguageModelConfig.Preset(rawValue: preset) else { throw ValidationError("unknown preset '\(preset)'") }
        (options.attention, options.preset, options.dataPath, options.steps) = (kind, size, data, steps)
        (options.outDirectory, options.resumeDirectory, options.seed) = (out, resume, seed)
        (options.convolutions, options.qkMean, options.valueShift) = (convolutions, !noQKMean, !noValueShift)
        options.matchParameters = !noMatchParameters
        options.progress = { text in
            print(text, terminator: "")
            fflush(nil)
        }
        let summary = try Trainer.run(options)
        let final = summary.history.last
        print("\n\(kind.rawValue): \(summary.parameterCount) parameters, final train loss \(final?.trainLoss ?? .nan), "
              + "validation loss \(final?.validationLoss ?? .nan), \(Int(summary.tokensPerSecond)) tokens/s")
    }
}
