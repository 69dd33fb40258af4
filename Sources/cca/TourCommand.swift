import ArgumentParser
import CCA

struct TourCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tour",
        abstract: "A short tour on built-in defaults: the cost table at the ZAYA1 shape, then each attention layer timed on this CPU.")

    @Option(name: .customLong("seq"), help: "Sequence length of the timed forward passes.") var length: Int = 1024

    func run() throws {
        let shapes = ComparisonShapes()
        print("== Cost per layer at the ZAYA1 width (report Table II, counted from the implemented layers)\n")
        try printCostTable(shapes, length: 16384, batch: 1)
        print("\n== Forward pass of one layer on this CPU (random weights, B=1, S=\(length), float32, \(coreCount) cores, \(MatrixMultiply.backendName))\n")
        let x = Tensor(randomNormal: [1, length, shapes.hiddenSize], seed: 1)
        var rows: [[String]] = []
        var mhaSeconds = 0.0
        for method in AttentionMethod.allCases {
            let layer = try shapes.layer(method, seed: 2)
            let seconds = try medianSeconds(repeats: 3) { _ = try layer.forward(x) }
            if method == .mha { mhaSeconds = seconds }
            let flops = try shapes.cost(method).forwardFLOPs(length: length, causal: true)
            rows.append([method.rawValue, format(seconds * 1000) + " ms", format(flops / seconds / 1e9) + " GFLOP/s",
                         format(mhaSeconds / seconds) + "x"])
        }
        printTable(["method", "forward", "rate", "speed vs MHA"], rows)
        let ccgqa = try CCA(config: shapes.ccgqa(), seed: 2)
        let y = try ccgqa.forward(x)
        let rms = (y.storage.reduce(0) { $0 + Double($1) * Double($1) } / Double(y.count)).squareRoot()
        print("\nCCGQA (Hq=\(ccgqa.config.queryHeads), Hkv=\(ccgqa.config.keyValueHeads)) output \(y.shape), rms \(format(rms))")
        print("Next: `cca cost --help`, `cca forward --help`, `cca bench --help`.")
    }
}
