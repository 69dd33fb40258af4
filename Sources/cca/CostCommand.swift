import ArgumentParser
import CCA

/// Options that pick the five methods' shapes; shared by `cost`, `bench` and the tour.
struct ShapeOptions: ParsableArguments {
    @Option(help: "Model width E.") var hidden: Int = 2048
    @Option(help: "Latent head dimension d.") var headDim: Int = 128
    @Option(help: "GQA group size G.") var gqaGroup: Int = 4
    @Option(help: "CCA compression C (Hq = Hkv = E/(C·d)).") var compression: Int = 4
    @Option(help: "CCGQA query compression Cq.") var queryCompression: Int = 2
    @Option(help: "CCGQA key/value compression Ckv.") var keyValueCompression: Int = 8

    var shapes: ComparisonShapes {
        ComparisonShapes(hiddenSize: hidden, headDim: headDim, gqaGroup: gqaGroup, ccaCompression: compression,
                         ccgqaQueryCompression: queryCompression, ccgqaKeyValueCompression: keyValueCompression)
    }
}

struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Print parameters, KV-cache and forward FLOPs of MHA, GQA, MLA, CCA and CCGQA side by side.")

    @OptionGroup var shape: ShapeOptions
    @Option(name: .customLong("seq"), help: "Sequence length S.") var length: Int = 16384
    @Option(help: "Batch size B.") var batch: Int = 1

    func run() throws {
        try printCostTable(shape.shapes, length: length, batch: batch)
    }
}

/// The cost table with ratios to MHA, as `cca cost` and the tour print it.
func printCostTable(_ shapes: ComparisonShapes, length: Int, batch: Int) throws {
    guard length > 0, batch > 0 else { throw ValidationError("--seq and --batch must be positive") }
    let mha = try shapes.cost(.mha)
    func ratio(_ value: Double, _ reference: Double) -> String { format(value / reference) + "x" }
    let rows = try AttentionKind.allCases.map { method -> [String] in
        let cost = try shapes.cost(method)
        let cache = Double(cost.cacheElements(length: length, batch: batch))
        let causal = cost.forwardFLOPs(length: length, batch: batch, causal: true)
        let full = cost.forwardFLOPs(length: length, batch: batch, causal: false)
        return [method.rawValue, formatCount(Double(cost.parameters)), ratio(Double(cost.parameters), Double(mha.parameters)),
                formatCount(cache), ratio(cache, Double(mha.cacheElements(length: length, batch: batch))),
                formatCount(causal), ratio(causal, mha.forwardFLOPs(length: length, batch: batch, causal: true)),
                formatCount(full), ratio(full, mha.forwardFLOPs(length: length, batch: batch, causal: false))]
    }
    print("E=\(shapes.hiddenSize) d=\(shapes.headDim) S=\(length) B=\(batch); GQA G=\(shapes.gqaGroup), CCA C=\(shapes.ccaCompression), "
          + "CCGQA Cq=\(shapes.ccgqaQueryCompression) Ckv=\(shapes.ccgqaKeyValueCompression), MLA c_q=\(shapes.mlaQueryCompression) c_kv=\(shapes.mlaKeyValueCompression) dr=\(shapes.mlaRopeDim)")
    printTable(["method", "params", "vs MHA", "KV cache", "vs MHA", "FLOPs causal", "vs MHA", "FLOPs full", "vs MHA"], rows)
}
