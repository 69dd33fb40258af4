import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `cca train`: trains a small byte-level language model with one attention kind.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a decoder-only LM on bytes or a tokenizer's ids (built-in associative recall task by default) with one attention kind.",
        discussion: """
        Without --out the run goes to runs/<attention>-<date>-<time>. An existing run is never replaced \
        unless --overwrite is given. --resume DIR continues the run in DIR with the settings stored there \
        (no other flags needed); --steps larger than the run's extends it, stretching the cosine schedule \
        to the new total. The tiny preset's 300 steps take about 10-40 s on 2 cores (release build). With \
        --device cuda the progress line adds the model-FLOPs utilisation against the GPU's measured bfloat16 peak; \
        the GPU trains rows of equal length (the recall task, --data text files) and refuses packed corpora with \
        document boundaries until its attention can mask them.
        """)

    @Option(help: "Attention kind (default cca).") var attention: AttentionKind?
    @Option(help: "Model size (default tiny).") var preset: LanguageModelConfig.Preset?
    @Option(help: "UTF-8 text file to learn as bytes (default: the built-in multi-query associative recall task).") var data: String?
    @Option(help: "A tokenizer.json that encodes a --data text file (or the one a --data token directory records); kept with the checkpoint.")
    var tokenizer: String?
    @Option(parsing: .unconditional, help: "Total optimizer steps (default: the preset's: 300 tiny, 600 small).") var steps: Int?
    @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Peak learning rate (default: 0.01 tiny, 0.003 small).") var learningRate: Double?
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Sequences per step (default 16).") var batchSize: Int?
    @Option(name: .customLong("context"), parsing: .unconditional, help: "Tokens per training sequence of a --data text (default: 32 tiny, 128 small).")
    var contextLength: Int?
    @Option(parsing: .unconditional, help: "Warmup steps of the schedule (default: 20 tiny, 50 small).") var warmup: Int?
    @Option(name: .customLong("save-every"), parsing: .unconditional, help: "Steps between checkpoints; one is always written at the end (default: 100 tiny, 200 small).")
    var saveEvery: Int?
    @Option(help: "Run directory for checkpoints, loss.csv and loss.svg (default: runs/<attention>-<date>-<time>).") var out: String?
    @Option(help: "Run directory to continue, with the settings stored in it.") var resume: String?
    @Flag(help: "Replace the run already in --out.") var overwrite = false
    @Option(name: .customLong("ablate-convolutions"), parsing: .unconditional, help: "CCA convolutions: 0, 1 or 2 (default 2).") var convolutions: Int?
    @Flag(name: .customLong("no-qk-mean"), help: "Disable CCA's QK-mean skip path.") var noQKMean = false
    @Flag(name: .customLong("no-value-shift"), help: "Disable CCA's value shift.") var noValueShift = false
    @Option(help: "Random seed of weights and data (default 0).") var seed: UInt64?
    @Flag(name: .customLong("no-match-parameters"), help: "Keep the preset MLP width instead of matching MHA's parameter count.")
    var noMatchParameters = false
    @Option(help: "Where the updates run: cpu (float32) or cuda (the whole model on the GPU). A checkpoint resumes on either.")
    var device: Device = .cpu
    @Option(help: "GPU storage precision of --device cuda: bfloat16 (default; float32 master weights and moments) or float32.")
    var precision: CUDAPrecision?
    @Option(name: .customLong("sample-tokens"), parsing: .unconditional,
            help: "Tokens of the sample written at the end, after the opening of a validation text (text data only; 0: none).")
    var sampleTokens: Int = 64

    /// The longest sample a run writes at its end.
    static let sampleLimit = 4096

    var options: TrainingOptions {
        var options = TrainingOptions()
        (options.attention, options.preset, options.dataPath, options.steps) = (attention, preset, data, steps)
        options.tokenizerPath = tokenizer
        (options.learningRate, options.batchSize, options.contextLength) = (learningRate, batchSize, contextLength)
        (options.warmupSteps, options.saveInterval, options.seed) = (warmup, saveEvery, seed)
        (options.outDirectory, options.resumeDirectory, options.overwrite) = (out, resume, overwrite)
        options.convolutions = convolutions
        // A flag that is not given leaves the setting to the preset, or to the run being resumed.
        (options.qkMean, options.valueShift) = (noQKMean ? false : nil, noValueShift ? false : nil)
        options.matchParameters = noMatchParameters ? false : nil
        options.progress = .standardError
        if device == .cuda {
            let precision = precision ?? .bfloat16
            options.engine = { try CUDATrainingEngine(model: $0, optimizer: $1, precision: precision) }
        }
        return options
    }

    func validate() throws {
        try validating { try options.validate() }
        if overwrite, resume != nil { throw ValidationError("--overwrite starts a new run; it cannot be combined with --resume") }
        if device == .cpu, precision != nil { throw ValidationError("--precision is for --device cuda; the CPU trains in float32") }
        guard (0...Self.sampleLimit).contains(sampleTokens) else {
            throw ValidationError("--sample-tokens must be from 0 to \(Self.sampleLimit), got \(sampleTokens)")
        }
    }

    func run() throws {
        var options = options
        if options.outDirectory == nil, options.resumeDirectory == nil {
            options.outDirectory = Self.defaultRunDirectory(attention: attention ?? .cca)
        }
        if let resume, options.outDirectory == nil || options.outDirectory == resume {
            print("Resuming the run in \(resume)")
        } else {
            print("Run directory: \(options.outDirectory ?? "")" + (resume.map { " (resuming the run in \($0))" } ?? ""))
        }
        let summary = try Trainer.run(options)
        let final = summary.history.last
        print("\(summary.config.attention.rawValue): \(summary.parameterCount) parameters, final train loss "
              + (final.map { NumberFormatting.fixed($0.trainLoss, 4) } ?? "-") + ", validation loss "
              + (final?.validationLoss.map { NumberFormatting.fixed($0, 4) } ?? "-")
              + ", \(Int(summary.tokensPerSecond)) tokens/s"
              + (device == .cuda ? CUDATrainingEngine.processPeakMemory.map { ", peak GPU memory \($0 >> 20) MiB" } ?? "" : ""))
        if let directory = summary.outDirectory {
            print("Saved to \(directory): checkpoint.json, weights, loss.csv, loss.svg. Continue with `cca train --resume \(directory) --steps N`; "
                  + "sample with `cca generate --checkpoint \(directory) --prompt TEXT`.")
            if sampleTokens > 0, let prompt = summary.samplePrompt { printSample(from: directory, prompt: prompt) }
        }
    }

    /// A continuation of `prompt` by the saved model, on the device it trained on. The run is saved by now, so a
    /// sample that cannot be made is reported, not a failure of the run.
    private func printSample(from directory: String, prompt: [Int]) {
        let temperature: Float = 0.8
        do {
            let generator = try CheckpointGenerator(checkpoint: directory, device: device, precision: precision ?? .bfloat16)
            var sampler = try Sampler(temperature: temperature, topK: nil, topP: nil, seed: seed ?? 0)
            print("\nSample (\(sampleTokens) tokens at temperature \(temperature), after the opening of a validation text):\n"
                  + generator.tokenizer.decode(prompt, skipSpecialTokens: true), terminator: "")
            _ = try generator.generate(prompt: prompt, maxTokens: sampleTokens, sampler: &sampler) { print($0, terminator: "") }
            print("")
        } catch {
            print("\nNo sample: \(error)")
        }
    }

    /// `runs/cca-20261201-091500`, local time; a suffix keeps two runs started in the same second apart.
    static func defaultRunDirectory(attention: AttentionKind) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let stamp = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
        let base = "runs/\(attention.rawValue)-\(stamp)"
        var candidate = base, suffix = 2
        while pathExists(candidate) {
            candidate = "\(base)-\(suffix)"
            suffix += 1
        }
        return candidate
    }
}
