/// What every attention layer offers: its width, its weights under their interchange names, and a forward pass.
public protocol AttentionLayer: Sendable {
    /// Model width E (input and output features).
    var hiddenSize: Int { get }
    /// Every parameter tensor under the name it has in the reference (transformers) module.
    var weights: [String: Tensor] { get }
    /// Runs the layer on `x` `[B, S, E]`.
    ///
    /// - Parameter mask: optional `[B, S]`, 1 for tokens and 0 for padding. Padded rows of `x` are zeroed
    ///   before anything else, padded keys are never attended, and padded output rows are 0.
    func forward(_ x: Tensor, mask: Tensor?) throws -> Tensor
}

extension AttentionLayer {
    /// Number of scalar parameters.
    public var parameterCount: Int { weights.values.reduce(0) { $0 + $1.count } }

    /// Runs the layer without padding.
    public func forward(_ x: Tensor) throws -> Tensor { try forward(x, mask: nil) }
}

/// Anything with a shape that weights can be checked against: ``Tensor`` and the training tensors.
public protocol ShapedTensor {
    var shape: [Int] { get }
}

extension Tensor: ShapedTensor {}

/// A weight file's tensors, handed out by name with their shapes checked.
public struct WeightDictionary<Value: ShapedTensor> {
    public let tensors: [String: Value]

    public init(_ tensors: [String: Value]) { self.tensors = tensors }

    /// The tensor called `name`, which must have shape `shape`.
    public func take(_ name: String, _ shape: [Int]) throws -> Value {
        guard let tensor = tensors[name] else { throw WeightError.missing(name: name, available: tensors.keys.sorted()) }
        guard tensor.shape == shape else { throw WeightError.wrongShape(name: name, expected: shape, actual: tensor.shape) }
        return tensor
    }

    /// Every tensor named in `shapes`, each checked; extra tensors in the file are ignored.
    public func take(_ shapes: [String: [Int]]) throws -> [String: Value] {
        var taken: [String: Value] = [:]
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) { taken[name] = try take(name, shape) }
        return taken
    }
}

/// Random weights for every name in `shapes`: `draw(name, shape, seed)` with a seed of its own per name,
/// so each layer is reproducible from one seed. Linear weights use PyTorch's scale (std `1/sqrt(in)`).
func randomWeights(_ shapes: [String: [Int]], seed: UInt64,
                   draw: (String, [Int], UInt64) -> Tensor? = { _, _, _ in nil }) -> [String: Tensor] {
    var weights: [String: Tensor] = [:]
    for (index, (name, shape)) in shapes.sorted(by: { $0.key < $1.key }).enumerated() {
        let seed = seed &+ UInt64(index + 1)
        weights[name] = draw(name, shape, seed) ?? randomLinearWeight(shape[0], shape[1], seed: seed)
    }
    return weights
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

/// The input of a layer after the padding mask is applied.
struct PreparedInput {
    var x: Tensor
    let batch: Int, length: Int
    /// `[B·S]` flags, nil when nothing is padded.
    let keyValid: [Bool]?

    /// Throws unless `x` is `[B, S, hiddenSize]`.
    static func validateShape(_ x: Tensor, hiddenSize: Int) throws {
        guard x.rank == 3 else { throw ShapeError.rank(name: "input x", expected: 3, actual: x.shape) }
        guard x.shape[2] == hiddenSize else {
            throw ShapeError.mismatch(name: "input x", expected: [x.shape[0], x.shape[1], hiddenSize], actual: x.shape)
        }
    }

    init(_ x: Tensor, mask: Tensor?, hiddenSize: Int) throws {
        try Self.validateShape(x, hiddenSize: hiddenSize)
        (batch, length) = (x.shape[0], x.shape[1])
        self.x = x
        guard let mask else { keyValid = nil; return }
        try mask.requireShape([batch, length], "mask")
        let valid = mask.storage.map { $0 != 0 }
        for row in 0..<(batch * length) where !valid[row] {
            for i in 0..<hiddenSize { self.x.storage[row * hiddenSize + i] = 0 }
        }
        keyValid = valid.allSatisfy { $0 } ? nil : valid
    }

    /// Sets the rows of padded positions in a `[B, S, …]` output to zero.
    func zeroPadded(_ output: inout Tensor) {
        guard let keyValid else { return }
        let width = output.count / keyValid.count
        for row in 0..<keyValid.count where !keyValid[row] {
            for i in 0..<width { output.storage[row * width + i] = 0 }
        }
    }
}

/// `x[…, in] · Wᵀ` for a linear weight `W` `[out, in]`: the shape keeps x's leading dimensions.
func linear(_ x: Tensor, _ weight: Tensor) -> Tensor {
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    let rows = x.count / inFeatures
    var y = Tensor(zeros: Array(x.shape.dropLast()) + [outFeatures])
    x.storage.withUnsafeBufferPointer { xs in
        weight.storage.withUnsafeBufferPointer { ws in
            y.storage.withUnsafeMutableBufferPointer { ys in
                MatrixMultiply.linear(xs.baseAddress!, rows: rows, inFeatures: inFeatures, weight: ws.baseAddress!,
                                      outFeatures: outFeatures, into: ys.baseAddress!)
            }
        }
    }
    return y
}

/// A linear weight `[out, in]` drawn like PyTorch's default scale (std `1/sqrt(in)`).
func randomLinearWeight(_ outFeatures: Int, _ inFeatures: Int, seed: UInt64) -> Tensor {
    Tensor(randomNormal: [outFeatures, inFeatures], std: 1 / Float(inFeatures).squareRoot(), seed: seed)
}
