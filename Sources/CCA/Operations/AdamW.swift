/// Adam with decoupled weight decay (Loshchilov & Hutter), with bias-corrected moments.
///
/// Decay applies to matrices only (embeddings, projections, conv B taps); norms, biases and temperatures,
/// whose scale is their meaning, are not decayed.
public struct AdamW<Scalar: TensorScalar>: Sendable {
    public var beta1: Scalar = 0.9, beta2: Scalar = 0.95, epsilon: Scalar = 1e-8
    public var weightDecay: Scalar
    /// Updates taken so far (the bias-correction exponent).
    public var step: Int = 0
    /// First and second moments by parameter name.
    public var firstMoments: [String: Tensor<Scalar>] = [:]
    public var secondMoments: [String: Tensor<Scalar>] = [:]

    public init(weightDecay: Scalar) { self.weightDecay = weightDecay }

    /// One update of every parameter with its gradient at learning rate `rate`.
    /// - Throws: ``AdamWError`` when a gradient or a moment does not have its parameter's shape.
    @_specialize(where Scalar == Float)
    public mutating func update(_ parameters: inout [String: Tensor<Scalar>], grads: [String: Tensor<Scalar>],
                                rate: Scalar) throws {
        for name in parameters.keys.sorted() {
            let shape = parameters[name]!.shape
            for (kind, tensor) in [("gradient", grads[name]), ("first moment", firstMoments[name]),
                                   ("second moment", secondMoments[name])] {
                if let tensor, tensor.shape != shape {
                    throw AdamWError.shapeMismatch(name: name, of: kind, expected: shape, actual: tensor.shape)
                }
            }
        }
        step += 1
        let correction1 = 1 - Scalar.pow(beta1, step), correction2 = 1 - Scalar.pow(beta2, step)
        for name in parameters.keys.sorted() {
            guard let gradient = grads[name] else { continue }
            var m = firstMoments[name] ?? Tensor(zeros: gradient.shape)
            var v = secondMoments[name] ?? Tensor(zeros: gradient.shape)
            var parameter = parameters[name]!
            let decay = parameter.rank >= 2 ? weightDecay : 0
            for i in 0..<parameter.count {
                let g = gradient.storage[i]
                m.storage[i] = beta1 * m.storage[i] + (1 - beta1) * g
                v.storage[i] = beta2 * v.storage[i] + (1 - beta2) * g * g
                let update = (m.storage[i] / correction1) / ((v.storage[i] / correction2).squareRoot() + epsilon)
                parameter.storage[i] -= rate * (update + decay * parameter.storage[i])
            }
            (firstMoments[name], secondMoments[name], parameters[name]) = (m, v, parameter)
        }
    }
}

/// An optimizer state that does not fit the parameters it updates.
public enum AdamWError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(name: String, of: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .shapeMismatch(name, kind, expected, actual):
            return "the \(kind) of '\(name)' has shape \(actual) but the parameter has \(expected)"
        }
    }
}
