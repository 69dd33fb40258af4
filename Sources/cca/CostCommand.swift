import ArgumentParser
import CCA

/// Options that pick the five methods' shapes; shared by `cost`, `bench` and the tour.
struct ShapeOptions: ParsableArguments {
    // `.unconditional` reads `--hidden -2048` as a value (refused below), not as a missing value.
    @Option(parsing: .unconditional, help: "Model width E.") var hidden: Int = 2048
    @Option(parsing: .unconditional, help: "Latent head dimension d.") var headDim: Int = 128
    @Option(parsing: .unconditional, help: "GQA group size G.") var gqaGroup: Int = 4
    @Option(parsing: .unconditional, help: "CCA compression C (Hq = Hkv = E/(C·d)).") var compression: Int = 4
    @Option(parsing: .unconditional, help: "CCGQA query compression Cq.") var queryCompression: Int = 2
    @Option(parsing: .unconditional, help: "CCGQA key/value compression Ckv.") var keyValueCompression: Int = 8

    var shapes: ComparisonShapes {
        ComparisonShapes(hiddenSize: hidden, headDim: headDim, gqaGroup: gqaGroup, ccaCompression: compression,
                         ccgqaQueryCompression: queryCompression, ccgqaKeyValueCompression: keyValueCompression)
    }

    func validate() throws {
        try validating {
            for method in AttentionKind.allCases { try shapes.config(method).validate() }
        }
    }
}

struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Print parameters, KV-cache and forward FLOPs of MHA, GQA, MLA, CCA and CCGQA side by side.")

    /// Far beyond any real context or batch, and small enough that every count stays exact in a Double.
    static let maxTokens = 1 << 40

    @OptionGroup var shape: ShapeOptions
    @Option(name: .customLong("seq"), parsing: .unconditional, help: "Sequence length S.") var length: Int = 16384
    @Option(parsing: .unconditional, help: "Batch size B.") var batch: Int = 1

    func validate() throws {
        guard (1...Self.maxTokens).contains(length) else { throw ValidationError("--seq must be from 1 to \(Self.maxTokens), got \(length)") }
        guard (1...Self.maxTokens / length).contains(batch) else {
            throw ValidationError("--batch must be from 1 to \(Self.maxTokens / length) (at most \(Self.maxTokens) tokens in all), got \(batch)")
        }
    }

    func run() throws {
        try printCostTable(shape.shapes, length: length, batch: batch)
    }
}

/// The cost table with ratios to MHA, as `cca cost` and the tour print it. Counts are in Double, which holds
/// them exactly at these sizes where an Int product could overflow.
func printCostTable(_ shapes: ComparisonShapes, length: Int, batch: Int) throws {
    let tokens = Double(length) * Double(batch)
    let mha = try shapes.cost(.mha)
    func ratio(_ value: Double, _ reference: Double) -> String { format(value / reference) + "x" }
    let rows = try AttentionKind.allCases.map { method -> [String] in
        let cost = try shapes.cost(method)
        let cache = tokens * Double(cost.cacheElementsPerToken)
        let causal = cost.forwardFLOPs(length: length, batch: batch, causal: true)
        let full = cost.forwardFLOPs(length: length, batch: batch, causal: false)
        return [method.rawValue, formatCount(Double(cost.parameters)), ratio(Double(cost.parameters), Double(mha.parameters)),
                formatCount(cache), ratio(cache, tokens * Double(mha.cacheElementsPerToken)),
                formatCount(causal), ratio(causal, mha.forwardFLOPs(length: length, batch: batch, causal: true)),
                formatCount(full), ratio(full, mha.forwardFLOPs(length: length, batch: batch, causal: false))]
    }
    print("E=\(shapes.hiddenSize) d=\(shapes.headDim) S=\(length) B=\(batch); GQA G=\(shapes.gqaGroup), CCA C=\(shapes.ccaCompression), "
          + "CCGQA Cq=\(shapes.ccgqaQueryCompression) Ckv=\(shapes.ccgqaKeyValueCompression), MLA c_q=\(shapes.mlaQueryCompression) c_kv=\(shapes.mlaKeyValueCompression) dr=\(shapes.mlaRopeDim)")
    printTable(["method", "params", "vs MHA", "KV cache", "vs MHA", "FLOPs causal", "vs MHA", "FLOPs full", "vs MHA"], rows)
}
