/// A weight file's tensors, handed out by name with their shapes checked.
public struct WeightDictionary<Scalar: TensorScalar> {
    public let tensors: [String: Tensor<Scalar>]

    public init(_ tensors: [String: Tensor<Scalar>]) { self.tensors = tensors }

    /// The tensor called `name`, which must have shape `shape`.
    public func take(_ name: String, _ shape: [Int]) throws -> Tensor<Scalar> {
        guard let tensor = tensors[name] else { throw WeightError.missing(name: name, available: tensors.keys.sorted()) }
        guard tensor.shape == shape else { throw WeightError.wrongShape(name: name, expected: shape, actual: tensor.shape) }
        return tensor
    }

    /// Every tensor named in `shapes`, each checked; extra tensors in the file are ignored. All missing
    /// names are reported at once (one error per name would take as many tries as the layer has weights).
    public func take(_ shapes: [String: [Int]]) throws -> [String: Tensor<Scalar>] {
        let missing = shapes.filter { tensors[$0.key] == nil }
        guard missing.isEmpty else { throw WeightError.incomplete(missing: missing, available: tensors.keys.sorted()) }
        var taken: [String: Tensor<Scalar>] = [:]
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) { taken[name] = try take(name, shape) }
        return taken
    }

    /// The tensors whose names start with `prefix`, with the prefix removed.
    public func under(_ prefix: String) -> [String: Tensor<Scalar>] {
        var selected: [String: Tensor<Scalar>] = [:]
        for (name, value) in tensors where name.hasPrefix(prefix) { selected[String(name.dropFirst(prefix.count))] = value }
        return selected
    }
}

/// A weight set that does not fit the layer it is loaded into.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(name: String, available: [String])
    /// Every weight the config needs that the file lacks, with its shape.
    case incomplete(missing: [String: [Int]], available: [String])
    case wrongShape(name: String, expected: [Int], actual: [Int])
    case wrongDType(name: String, dtype: String, expected: String)

    public var description: String {
        switch self {
        case let .missing(name, available):
            let listed = available.prefix(12).joined(separator: ", ") + (available.count > 12 ? ", ..." : "")
            return "weight '\(name)' is missing from the weight file (it has: \(listed.isEmpty ? "nothing" : listed))"
        case let .incomplete(missing, available):
            let needed = missing.sorted { $0.key < $1.key }.map { "  \($0.key) \($0.value)" }.joined(separator: "\n")
            let listed = available.prefix(12).joined(separator: ", ") + (available.count > 12 ? ", ..." : "")
            return "the weight file lacks \(missing.count) weight\(missing.count == 1 ? "" : "s") this config needs (name and shape):\n\(needed)\n"
                + "it has: \(listed.isEmpty ? "nothing" : listed). `cca init-layer` writes a random weight file with every name and shape"
        case let .wrongShape(name, expected, actual):
            return "weight '\(name)' has shape \(actual) but this config needs \(expected); check hidden_size, heads and head_dim"
        case let .wrongDType(name, dtype, expected):
            return "tensor '\(name)' is stored as \(dtype); expected \(expected)"
        }
    }
}
