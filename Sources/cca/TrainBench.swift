import ArgumentParser
import CCA

/// Trains every attention kind on the same recall data, seed and schedule, and compares speed and loss.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train MHA, GQA, MLA, CCA and CCGQA on the same recall data and seed; print tokens/s and final validation loss.",
        discussion: """
        At the small preset the full schedule of all five kinds takes about 7 minutes on 2 cores (release build). \
        With --device cuda it times whole bfloat16 training steps instead (MHA at GPT-2-small scale, T = 1024, batch 16; \
        MHA, CCA and CCGQA at E = 2048, T = 8192; vocabulary 50304): tokens/s, MFU and peak memory, against the \
        PyTorch anchors of `scripts/train_anchors.py --csv FILE` run in the same device call (eager and torch.compile).
        """)

    @Option(help: "Model size (CPU).") var preset: LanguageModelConfig.Preset = .small
    @Option(help: "Optimizer steps per kind (default: the preset's full schedule on the CPU, 10 timed steps on cuda).") var steps: Int?
    @Option(help: "Random seed (weights and data), the same for every kind.") var seed: UInt64 = 0
    @Option(help: "cpu: train every kind on the recall task; cuda: time training steps against the PyTorch anchors.")
    var device: Device = .cpu
    @Option(help: "Anchor timings (CSV from scripts/train_anchors.py; cuda).") var anchors: String?
    @Option(help: "Write every row (ours and anchors) here as CSV (cuda).") var csv: String?
    @Option(help: "Write milliseconds per step against T here as SVG (cuda).") var svg: String?
    @Option(help: "cuda: also time each model on the same tokens packed as documents of this many tokens (rows -packed<N>).")
    var documentLength: Int?
    @Option(help: "Only these models, comma-separated, as the table names them (cuda; for example cca-wide).") var models: String?

    /// The GPU models to time: all of them, or those `--models` names.
    var selectedModels: [TrainBenchmark.Model] {
        get throws {
            let all = TrainBenchmark.models()
            guard let models else { return all }
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: " ") }
            if let unknown = names.first(where: { name in !all.contains { $0.name == name } }) {
                throw ValidationError("--models: no model named '\(unknown)'; the models are " + all.map(\.name).joined(separator: ", "))
            }
            return all.filter { names.contains($0.name) }
        }
    }

    func validate() throws {
        var options = TrainingOptions()
        options.steps = steps
        try validating { try options.validate() }
        if device == .cpu, anchors != nil || csv != nil || svg != nil || models != nil || documentLength != nil {
            throw ValidationError("--anchors, --csv, --svg, --models and --document-length are for --device cuda")
        }
        if let documentLength, documentLength < 1 {
            throw ValidationError("--document-length must be at least 1 (got \(documentLength))")
        }
        _ = try selectedModels
    }

    func run() throws {
        guard device == .cpu else { return try runOnGPU() }
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

    /// The GPU timings, the anchors beside them, and the ratios the issue asks for.
    private func runOnGPU() throws {
        let models = try selectedModels
        let ours = try TrainBenchmark.run(models: models, steps: steps ?? 10, documentLength: documentLength)
        let anchorRows = try anchors.map { try PrefillBenchmark.anchors(csv: String(decoding: readFile($0), as: UTF8.self), source: $0) } ?? []
        func row(_ method: String) -> PrefillBenchmark.Measurement? { (ours + anchorRows).first { $0.method == method } }
        func rate(_ method: String) -> String { row(method)?.teraflops.map { format($0) } ?? "-" }
        func value(_ method: String, _ digits: Int) -> String { row(method).map { NumberFormatting.fixed($0.milliseconds, digits) } ?? "-" }
        func ratio(_ fast: String, _ slow: String) -> String {
            guard let fast = row(fast)?.teraflops, let slow = row(slow)?.teraflops else { return "-" }
            return NumberFormatting.fixed(fast / slow, 2) + "x"
        }
        print("\nTraining steps on the GPU, bf16 (tokens/s; ratios of tokens/s)")
        printTable(["model", "T", "ours tok/s", "MFU %", "peak MiB", "torch eager", "torch compile", "torch peak MiB",
                    "vs compiled torch MHA", "vs our MHA"], models.map { model in
            let (name, preset) = (model.name, model.preset.rawValue)
            return [name, "\(model.length)", rate(name), value("mfu-" + name, 1), value("peak-mib-" + name, 0),
                    rate("torch-eager-" + preset), rate("torch-compile-" + preset), value("peak-mib-torch-compile-" + preset, 0),
                    ratio(name, "torch-compile-" + preset), ratio(name, "mha-" + preset)]
        })
        if let documentLength {
            print("\nPacked documents of \(documentLength) tokens against whole rows, same tokens (tokens/s)")
            printTable(["model", "T", "rows tok/s", "packed tok/s", "packed / rows"], models.compactMap { model in
                let packed = "\(model.name)-packed\(documentLength)"
                guard row(packed) != nil else { return nil }
                return [model.name, "\(model.length)", rate(model.name), rate(packed), ratio(packed, model.name)]
            })
        }
        let output = BenchmarkOutput(ours: ours, anchors: anchorRows)
        if let csv { try output.writeCSV(to: csv) }
        if let svg {
            let methods = models.map(\.name)
                + ["gpt2-small", "wide"].flatMap { ["torch-eager-" + $0, "torch-compile-" + $0] }
            try output.writePlot(title: "Training step (bf16, forward + backward + AdamW)", methods: methods, lengths: [1024, 8192], to: svg)
        }
    }
}
