/// One attention layer described by files, as the `cca forward` and `cca backward` commands and other
/// frameworks exchange it: a JSON config, a safetensors weight file (interchange names), and inputs `x`
/// `[B,S,E]` with an optional `mask` `[B,S]` (float, integer or boolean; 1 keeps a token, 0 pads).
public struct LayerFiles {
    public let configuration: any AttentionConfig
    public let layer: any AttentionLayer<Float>

    /// Loads the config and the weights; throws a config, weight or file error naming what to fix.
    public init(configPath: String, weightsPath: String) throws {
        configuration = try LayerConfigFile.load(path: configPath)
        layer = try configuration.makeLayer(weights: SafeTensors(contentsOf: weightsPath).floatTensors())
    }

    /// Reads `x` and the optional `mask` from an input file.
    public static func readInput(_ path: String) throws -> (x: Tensor<Float>, mask: Tensor<Float>?) {
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

    /// The layout of `x` `[B, S, E]` with its optional mask, after checking both shapes.
    func layout(_ x: Tensor<Float>, mask: Tensor<Float>?) throws -> SequenceLayout {
        guard x.rank == 3 else { throw ShapeError.rank(name: "input x", expected: 3, actual: x.shape) }
        let layout = try SequenceLayout(batch: x.shape[0], length: x.shape[1], mask: mask)
        try layout.validate(x, width: layer.hiddenSize)
        return layout
    }

    /// `y` for the input: one full pass, or, with `chunkLengths`, each sequence run through its decode
    /// state in chunks of those lengths (summing to S), which must give the same `y`.
    public func forward(_ x: Tensor<Float>, mask: Tensor<Float>?, chunkLengths: [Int]? = nil) throws -> Tensor<Float> {
        let layout = try layout(x, mask: mask)
        guard let chunkLengths else { return try layer.forward(x, layout: layout, states: nil, keep: false).y }
        guard mask == nil else { throw DecodeError.maskWithChunks }
        let (length, width) = (x.shape[1], x.shape[2])
        guard SequenceLayout.total(chunkLengths) == length else {
            throw LayerFilesError.chunksDoNotCover(chunks: chunkLengths, length: length)
        }
        var outputs: [Float] = []
        for range in layout.sequences {
            let sequence = Tensor(checked: [length, width], Array(x.storage[(range.lowerBound * width)..<(range.upperBound * width)]))
            outputs += try layer.forwardInChunks(sequence, chunkLengths: chunkLengths).storage
        }
        return Tensor(checked: x.shape, outputs)
    }

    /// `dx` and the gradient of every weight (under the weight's name) for the output gradient `dy`.
    public func backward(_ x: Tensor<Float>, mask: Tensor<Float>?, dy: Tensor<Float>) throws
        -> (dx: Tensor<Float>, grads: [String: Tensor<Float>]) {
        let layout = try layout(x, mask: mask)
        try dy.requireShape(x.shape, "grad-output dy")
        return try layer.pullback(x, layout: layout).backward(dy)
    }

    /// Runs the layer on the input file, writes `y` (float32) to `outputPath` atomically and returns it.
    @discardableResult
    public func run(inputPath: String, outputPath: String, chunkLengths: [Int]? = nil) throws -> Tensor<Float> {
        let (x, mask) = try Self.readInput(inputPath)
        let y = try forward(x, mask: mask, chunkLengths: chunkLengths)
        try SafeTensors.write(["y": y], metadata: ["format": "pt"], to: outputPath)
        return y
    }

    /// Reads `x` (and `mask`) as ``run(inputPath:outputPath:chunkLengths:)`` does and `dy` from the gradient
    /// file, and writes `dx` and `grad.<name>` for every weight to `outputPath`, atomically.
    public func runBackward(inputPath: String, gradientPath: String, outputPath: String) throws {
        let (x, mask) = try Self.readInput(inputPath)
        let gradient = try SafeTensors(contentsOf: gradientPath)
        try Self.require("dy", in: gradient, role: "a grad-output file holds dy [B, S, E], the shape of x")
        let (dx, grads) = try backward(x, mask: mask, dy: gradient.tensor("dy"))
        var tensors = ["dx": dx]
        for (name, gradient) in grads { tensors["grad." + name] = gradient }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: outputPath)
    }
}

/// A `cca forward` request that does not fit its input.
public enum LayerFilesError: Error, CustomStringConvertible, Equatable {
    case chunksDoNotCover(chunks: [Int], length: Int)

    public var description: String {
        switch self {
        case let .chunksDoNotCover(chunks, length):
            let total = SequenceLayout.total(chunks).map { "add up to \($0)" } ?? "are negative or add up to more than \(Int.max)"
            return "the chunk lengths \(chunks) \(total), but x has \(length) tokens per sequence; give lengths that add up to \(length)"
        }
    }
}
