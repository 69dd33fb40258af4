/// A dense row-major array with a shape, generic over the training scalar: the parameters, gradients
/// and optimizer moments of the training code. ``Tensor`` is its `Float` interchange form.
public struct TrainingTensor<Scalar: TrainingScalar>: Equatable, Sendable, ShapedTensor {
    public let shape: [Int]
    public var storage: [Scalar]

    public init(zeros shape: [Int]) {
        self.shape = shape
        storage = [Scalar](repeating: 0, count: shape.reduce(1, *))
    }

    public init(shape: [Int], storage: [Scalar]) {
        precondition(storage.count == shape.reduce(1, *), "storage does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    /// Converts a `Float` tensor.
    public init(_ tensor: Tensor) {
        self.init(shape: tensor.shape, storage: tensor.storage.map { Scalar($0) })
    }

    /// The `Float` tensor with the same values (rounded when `Scalar` is wider).
    public var tensor: Tensor { try! Tensor(shape: shape, storage: storage.map { Float($0) }) }

    public var count: Int { storage.count }
}

extension Dictionary where Value == Tensor {
    /// Every tensor converted to the training scalar `S`.
    public func training<S: TrainingScalar>(_: S.Type = S.self) -> [Key: TrainingTensor<S>] {
        mapValues { TrainingTensor<S>($0) }
    }
}

extension Dictionary {
    /// Every tensor converted back to `Float` tensors.
    public func tensors<S: TrainingScalar>() -> [Key: Tensor] where Value == TrainingTensor<S> {
        mapValues(\.tensor)
    }
}
