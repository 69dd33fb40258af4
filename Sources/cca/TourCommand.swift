import ArgumentParser
import CCA

struct TourCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tour",
        abstract: "A short tour on built-in defaults: the cost table at the ZAYA1 shape, then each attention layer timed on this CPU.",
        discussion: "About a minute on 2 cores (release build); progress lines show what runs.")

    @Option(name: .customLong("seq"), help: "Sequence length of the timed forward passes.") var length: Int = 1024

    func validate() throws {
        guard (1...65536).contains(length) else { throw ValidationError("--seq must be from 1 to 65536, got \(length)") }
    }

    func run() throws {
        let shapes = ComparisonShapes()
        print("== Cost per layer at the ZAYA1 width (report Table II, counted from the implemented layers)\n")
        try printCostTable(shapes, length: 16384, batch: 1)
        print("\n== Forward pass of one layer on this CPU (random weights, B=1, S=\(length), float32, \(coreCount) cores, \(MatrixMultiply.backendName))\n")
        let x = Tensor<Float>(randomNormal: [1, length, shapes.hiddenSize], seed: 1)
        let progress = ProgressReporter("tour: timing layers", total: Double(AttentionKind.allCases.count), unit: "layers")
        var rows: [[String]] = []
        var mhaSeconds = 0.0
        for (index, method) in AttentionKind.allCases.enumerated() {
            progress.update(done: Double(index), status: method.rawValue)
            let layer = try shapes.layer(method, seed: 2)
            let seconds = try medianSeconds(repeats: 3) { _ = try layer.forward(x) }
            if method == .mha { mhaSeconds = seconds }
            let flops = try shapes.cost(method).forwardFLOPs(length: length, causal: true)
            rows.append([method.rawValue, format(seconds * 1000) + " ms", format(flops / seconds / 1e9) + " GFLOP/s",
                         format(mhaSeconds / seconds) + "x"])
        }
        progress.finish()
        printTable(["method", "forward", "rate", "speed vs MHA"], rows)
        let ccgqa = try CCA<Float>(config: shapes.ccgqa(), seed: 2)
        let y = try ccgqa.forward(x)
        let rms = (y.storage.reduce(0) { $0 + Double($1) * Double($1) } / Double(y.count)).squareRoot()
        print("\nCCGQA (Hq=\(ccgqa.config.queryHeads), Hkv=\(ccgqa.config.keyValueHeads)) output \(y.shape), rms \(format(rms))")
        try trainTinyModels()
        print("\nNext: `cca cost --help`, `cca init-layer --help`, `cca forward --help`, `cca train --help`, `cca generate --help`, `cca bench --help`.")
    }

    /// Trains the tiny CCGQA model, and MHA beside it, on the built-in associative-recall task.
    private func trainTinyModels() throws {
        let chance = TrainingOptions.recallChanceLoss(.tiny)
        print("\n== Training the tiny models on multi-query associative recall (chance loss \(format(chance)) nats)\n")
        var histories: [(AttentionKind, TrainingSummary)] = []
        for kind in [AttentionKind.ccgqa, .mha] {
            var options = TrainingOptions()
            (options.attention, options.progress) = (kind, .standardError)
            histories.append((kind, try Trainer.run(options)))
        }
        let steps = histories[0].1.history.filter { $0.validationLoss != nil }.map(\.step)
        var rows: [[String]] = steps.map { ["\($0)"] }
        for (_, summary) in histories {
            let validation = summary.history.compactMap { record in record.validationLoss.map { (record.step, $0) } }
            for (index, step) in steps.enumerated() {
                rows[index].append(validation.first { $0.0 == step }.map { format($0.1) } ?? "")
            }
        }
        printTable(["step"] + histories.map { "\($0.0.rawValue) val loss" }, rows)
        for (kind, summary) in histories {
            print("\(kind.rawValue): \(summary.parameterCount) parameters, \(Int(summary.tokensPerSecond)) training tokens/s")
        }
    }
}
