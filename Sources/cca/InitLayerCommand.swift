import ArgumentParser
import CCA

/// `cca init-layer`: a random layer with everything `cca forward` and `cca backward` need.
struct InitLayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-layer",
        abstract: "Write a random attention layer: config.json, weights.safetensors, input.safetensors (x) and grad-output.safetensors (dy).",
        discussion: """
        Head counts default to the cost table's shapes: MHA and MLA E/d heads, GQA E/d query heads in groups \
        of 4, CCA E/(4d) heads (C = 4), CCGQA E/(2d) query and E/(8d) key/value heads. The files then run as \
        `cca forward --config DIR/config.json --weights DIR/weights.safetensors --input DIR/input.safetensors --output y.safetensors`.
        """)

    /// Elements of x (and of dy) at most: 1 GiB each in float32.
    static let maxInputElements = 1 << 28
    static let fileNames = ["config.json", "weights.safetensors", "input.safetensors", "grad-output.safetensors"]

    @Option(help: "Attention kind.") var attention: AttentionKind = .cca
    @Option(parsing: .unconditional, help: "Model width E.") var hidden: Int = 1024
    @Option(parsing: .unconditional, help: "Head dimension d.") var headDim: Int = 128
    @Option(parsing: .unconditional, help: "Query heads (default: see below).") var heads: Int?
    @Option(name: .customLong("kv-heads"), parsing: .unconditional, help: "Key/value heads for gqa, cca and ccgqa (default: see below; --heads when only that is given for cca or ccgqa).")
    var keyValueHeads: Int?
    @Option(parsing: .unconditional, help: "Batch size B of the input.") var batch: Int = 1
    @Option(name: .customLong("seq"), parsing: .unconditional, help: "Sequence length S of the input.") var length: Int = 16
    @Option(help: "Random seed of weights and inputs.") var seed: UInt64 = 0
    @Option(help: "Directory to write the four files into (created if needed).") var out: String
    @Flag(help: "Replace files of those names already in --out.") var overwrite = false

    /// The layer config: the comparison shapes at this E and d, with the head counts given.
    func layerConfig() throws -> any AttentionConfig {
        let shapes = ComparisonShapes(hiddenSize: hidden, headDim: headDim)
        let config: any AttentionConfig
        switch attention {
        case .mha:
            var c = try shapes.mha()
            if let heads { (c.queryHeads, c.keyValueHeads) = (heads, heads) }
            guard keyValueHeads == nil || keyValueHeads == c.queryHeads else {
                throw ValidationError("MHA has as many key/value heads as query heads; leave out --kv-heads or use --attention gqa")
            }
            config = c
        case .gqa:
            var c = try shapes.gqa()
            (c.queryHeads, c.keyValueHeads) = (heads ?? c.queryHeads, keyValueHeads ?? c.keyValueHeads)
            config = c
        case .mla:
            guard keyValueHeads == nil else { throw ValidationError("MLA has no separate key/value heads; leave out --kv-heads") }
            var c = try shapes.mla()
            c.heads = heads ?? c.heads
            config = c
        case .cca, .ccgqa:
            var c = try attention == .cca ? shapes.cca() : shapes.ccgqa()
            (c.queryHeads, c.keyValueHeads) = (heads ?? c.queryHeads, keyValueHeads ?? (heads == nil ? c.keyValueHeads : heads!))
            config = c
        }
        try config.validate()
        return config
    }

    func validate() throws {
        try validating { _ = try layerConfig() }
        guard batch >= 1, length >= 1, batch <= Self.maxInputElements / length / hidden else {
            throw ValidationError("--batch and --seq must be positive, with B·S·E at most \(Self.maxInputElements) elements")
        }
    }

    func run() throws {
        let config = try layerConfig()
        let layer: any AttentionLayer<Float> = try config.makeLayer(seed: seed)
        try createDirectory(out)
        let existing = Self.fileNames.filter { pathExists(out + "/" + $0) }
        guard overwrite || existing.isEmpty else {
            throw CommandError("\(out) already has \(existing.joined(separator: ", ")); pass --overwrite to replace them or pick another --out")
        }
        let x = Tensor<Float>(randomNormal: [batch, length, hidden], seed: seed &+ 1)
        let dy = Tensor<Float>(randomNormal: [batch, length, hidden], seed: seed &+ 2)
        try writeAtomically(config.fileJSON, to: out + "/config.json")
        try SafeTensors.write(layer.weights, metadata: ["format": "pt"], to: out + "/weights.safetensors")
        try SafeTensors.write(["x": x], metadata: ["format": "pt"], to: out + "/input.safetensors")
        try SafeTensors.write(["dy": dy], metadata: ["format": "pt"], to: out + "/grad-output.safetensors")
        print("Wrote to \(out): config.json (\(attention.rawValue), \(layer.parameterCount) parameters), weights.safetensors "
              + "(\(layer.weights.count) tensors), input.safetensors (x \(x.shape)), grad-output.safetensors (dy \(dy.shape)).")
        print("Next: cca forward --config \(out)/config.json --weights \(out)/weights.safetensors --input \(out)/input.safetensors --output \(out)/y.safetensors")
    }
}
