/// One attention layer described by files, as the `cca forward` command and other frameworks exchange it:
/// a JSON config, a safetensors weight file (interchange names), and inputs `x` `[B,S,E]` with an
/// optional `mask` `[B,S]` (float, integer or boolean; non-zero keeps a token).
public struct LayerFiles {
    public let configuration: AttentionLayerConfig
    public let layer: any DecodingAttention

    /// Loads the config and the weights; throws a config, weight or file error naming what to fix.
    public init(configPath: String, weightsPath: String) throws {
        configuration = try AttentionLayerConfig.load(path: configPath)
        let weights = try SafeTensors(contentsOf: weightsPath).floatTensors()
        // All missing names at once: one error per missing weight would take as many tries as the layer has weights.
        let missing = configuration.weightShapes.filter { weights[$0.key] == nil }
        guard missing.isEmpty else { throw WeightError.incomplete(missing: missing, available: weights.keys.sorted()) }
        layer = try configuration.inferenceLayer(weights: weights)
    }

    /// Reads `x` and the optional `mask` from an input file.
    public static func readInput(_ path: String) throws -> (x: Tensor, mask: Tensor?) {
        let file = try SafeTensors(contentsOf: path)
        try require("x", in: file, role: "a layer input file holds x [B, S, E] and optionally mask [B, S]")
        let x = try file.tensor("x")
        guard let mask = file["mask"] else { return (x, nil) }
        return (x, mask.dtype.isFloat ? try file.tensor("mask") : try file.integerTensor("mask"))
    }

    /// Throws ``SafeTensorsError`` (kind `.missingTensor`) when `file` has no tensor `name`, saying what the
    /// file should hold (`role`) and what it has: a missing input is not a missing weight.
    public static func require(_ name: String, in file: SafeTensors, role: String) throws {
        guard file[name] == nil else { return }
        let held = file.names.isEmpty ? "no tensors" : file.names.sorted().joined(separator: ", ")
        throw SafeTensorsError(kind: .missingTensor, path: file.path, tensor: name, message: "missing; \(role), this one has \(held)")
    }

    /// `y` for the input: one full pass, or, with `chunkLengths`, each sequence run through its decode
    /// state in chunks of those lengths (summing to S), which must give the same `y`.
    public func forward(_ x: Tensor, mask: Tensor?, chunkLengths: [Int]? = nil) throws -> Tensor {
        guard let chunkLengths else { return try layer.forward(x, mask: mask) }
        guard mask == nil else { throw DecodeError.maskWithChunks }
        try PreparedInput.validateShape(x, hiddenSize: layer.hiddenSize)
        guard LayerFilesError.total(chunkLengths) == x.shape[1] else {
            throw LayerFilesError.chunksDoNotCover(chunks: chunkLengths, length: x.shape[1])
        }
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        var outputs: [Float] = []
        for b in 0..<batch {
            let sequence = try Tensor(shape: [length, width], storage: Array(x.storage[(b * length * width)..<((b + 1) * length * width)]))
            outputs += try layer.forwardInChunks(sequence, chunkLengths: chunkLengths).storage
        }
        return try Tensor(shape: x.shape, storage: outputs)
    }

    /// Runs the layer on the input file, writes `y` (float32) to `outputPath` atomically and returns it.
    @discardableResult
    public func run(inputPath: String, outputPath: String, chunkLengths: [Int]? = nil) throws -> Tensor {
        let (x, mask) = try Self.readInput(inputPath)
        let y = try forward(x, mask: mask, chunkLengths: chunkLengths)
        try SafeTensors.write(["y": y], metadata: ["format": "pt"], to: outputPath)
        return y
    }
}

/// A `cca forward` request that does not fit its input.
public enum LayerFilesError: Error, CustomStringConvertible, Equatable {
    case chunksDoNotCover(chunks: [Int], length: Int)

    public var description: String {
        switch self {
        case let .chunksDoNotCover(chunks, length):
            let total = Self.total(chunks).map { "add up to \($0)" } ?? "are negative or add up to more than \(Int.max)"
            return "the chunk lengths \(chunks) \(total), but x has \(length) tokens per sequence; give lengths that add up to \(length)"
        }
    }

    /// The sum of non-negative `lengths`, added with overflow checks (values near `Int.max` would otherwise
    /// wrap to a plausible total); nil when one is negative or the sum overflows.
    static func total(_ lengths: [Int]) -> Int? {
        var total = 0
        for length in lengths {
            let (sum, overflow) = total.addingReportingOverflow(length)
            guard length >= 0, !overflow else { return nil }
            total = sum
        }
        return total
    }
}
