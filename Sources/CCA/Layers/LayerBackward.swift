/// The backward pass of any inference ``AttentionLayer``, in `Float`, for `cca backward`.
public enum LayerBackward {
    /// `dx` and the gradient of every weight (under the weight's name) for input `x` and output gradient `dy`.
    public static func run(_ layer: any AttentionLayer, x: Tensor, dy: Tensor) throws -> (dx: Tensor, grads: [String: Tensor]) {
        try PreparedInput.validateShape(x, hiddenSize: layer.hiddenSize)
        try dy.requireShape(x.shape, "grad-output dy")
        let trainable: any DifferentiableAttention<Float> = switch layer {
        case let layer as CCA: try TrainableCCA(layer)
        case let layer as GQA: try TrainableGQA(layer)
        case let layer as MHA: try TrainableGQA(layer.inner)
        case let layer as MLA: try TrainableMLA(layer)
        default: throw LayerBackwardError.unsupportedLayer(String(describing: type(of: layer)))
        }
        let (_, backward) = trainable.pullback(TrainingTensor(x))
        let (dx, grads) = backward(TrainingTensor(dy))
        return (dx.tensor, grads.tensors())
    }

    /// Reads `x` from the input file (as `cca forward` does) and `dy` from the gradient file, runs the
    /// backward pass and writes `dx` and `grad.<name>` for every weight to `outputPath`, atomically.
    public static func run(_ layer: any AttentionLayer, inputPath: String, gradientPath: String, outputPath: String) throws {
        let (x, mask) = try LayerFiles.readInput(inputPath)
        guard mask == nil else { throw LayerBackwardError.maskNotSupported(path: inputPath) }
        let result = try run(layer, x: x, dy: SafeTensors(contentsOf: gradientPath).tensor("dy"))
        var tensors = ["dx": result.dx]
        for (name, gradient) in result.grads { tensors["grad." + name] = gradient }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: outputPath)
    }
}

/// Why `cca backward` cannot run.
public enum LayerBackwardError: Error, CustomStringConvertible, Equatable {
    case unsupportedLayer(String)
    case maskNotSupported(path: String)

    public var description: String {
        switch self {
        case let .unsupportedLayer(type): "no backward pass for layer type \(type)"
        case let .maskNotSupported(path): "'\(path)' holds a mask; the backward pass runs unpadded sequences only, so drop the mask"
        }
    }
}
