/// The backward pass of any inference ``AttentionLayer``, in `Float`, for `cca backward`.
public enum LayerBackward {
    /// `dx` and the gradient of every weight (under the weight's name) for input `x` and output gradient `dy`.
    public static func run(_ layer: any AttentionLayer, x: Tensor, dy: Tensor) throws -> (dx: Tensor, grads: [String: Tensor]) {
        guard x.rank == 3, x.shape[2] == layer.hiddenSize else {
            throw ShapeError.mismatch(name: "input x", expected: [x.shape.first ?? 1, x.shape.dropFirst().first ?? 1, layer.hiddenSize], actual: x.shape)
        }
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

    /// The only tensor of a safetensors file.
    public static func readSingleTensor(_ path: String) throws -> Tensor {
        let tensors = try CheckpointSafeTensors.read(path)
        guard tensors.count == 1, let tensor = tensors.values.first else {
            throw LayerBackwardError.expectedOneTensor(path: path, names: tensors.keys.sorted())
        }
        return tensor
    }

    /// Writes `dx` and `grad.<name>` for every weight gradient to a safetensors file, atomically.
    public static func write(_ result: (dx: Tensor, grads: [String: Tensor]), to path: String) throws {
        var tensors = ["dx": result.dx]
        for (name, gradient) in result.grads { tensors["grad." + name] = gradient }
        try CheckpointSafeTensors.writeAtomically(CheckpointSafeTensors.encode(tensors), to: path)
    }
}

/// Why `cca backward` cannot run.
public enum LayerBackwardError: Error, CustomStringConvertible, Equatable {
    case unsupportedLayer(String)
    case expectedOneTensor(path: String, names: [String])
    case layerLoaderMissing

    public var description: String {
        switch self {
        case let .unsupportedLayer(type): "no backward pass for layer type \(type)"
        case let .expectedOneTensor(path, names): "'\(path)' should hold exactly one tensor, it has \(names)"
        case .layerLoaderMissing: "this build has no layer config loader yet (makeLayer is provided by `cca forward`)"
        }
    }
}
