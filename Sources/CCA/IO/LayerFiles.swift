/// One attention layer described by files, as the `cca forward` command and other frameworks exchange it:
/// a JSON config, a safetensors weight file (interchange names), and inputs `x` `[B,S,E]` with an
/// optional `mask` `[B,S]` (float, integer or boolean; non-zero keeps a token).
public struct LayerFiles {
    public let configuration: AttentionLayerConfig
    public let layer: any DecodingAttention

    /// Loads the config and the weights; throws a config, weight or file error naming what to fix.
    public init(configPath: String, weightsPath: String) throws {
        configuration = try AttentionLayerConfig.load(path: configPath)
        layer = try configuration.inferenceLayer(weights: SafeTensors(contentsOf: weightsPath).floatTensors())
    }

    /// Reads `x` and the optional `mask` from an input file.
    public static func readInput(_ path: String) throws -> (x: Tensor, mask: Tensor?) {
        let file = try SafeTensors(contentsOf: path)
        let x = try file.tensor("x")
        guard let mask = file["mask"] else { return (x, nil) }
        return (x, mask.dtype.isFloat ? try file.tensor("mask") : try file.integerTensor("mask"))
    }

    /// `y` for the input: one full pass, or, with `chunkLengths`, each sequence run through its decode
    /// state in chunks of those lengths (summing to S), which must give the same `y`.
    public func forward(_ x: Tensor, mask: Tensor?, chunkLengths: [Int]? = nil) throws -> Tensor {
        guard let chunkLengths else { return try layer.forward(x, mask: mask) }
        guard mask == nil else { throw DecodeError.maskWithChunks }
        try PreparedInput.validateShape(x, hiddenSize: layer.hiddenSize)
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        var outputs: [Float] = []
        for b in 0..<batch {
            let sequence = try Tensor(shape: [length, width], storage: Array(x.storage[(b * length * width)..<((b + 1) * length * width)]))
            outputs += try layer.forwardInChunks(sequence, chunkLengths: chunkLengths).storage
        }
        return try Tensor(shape: x.shape, storage: outputs)
    }

    /// Runs the layer on the input file and writes `y` (float32) to `outputPath` atomically.
    public func run(inputPath: String, outputPath: String, chunkLengths: [Int]? = nil) throws {
        let (x, mask) = try Self.readInput(inputPath)
        let y = try forward(x, mask: mask, chunkLengths: chunkLengths)
        try SafeTensors.write(["y": y], metadata: ["format": "pt"], to: outputPath)
    }
}
