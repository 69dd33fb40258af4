/// Adam with decoupled weight decay (Loshchilov & Hutter), with bias-corrected moments.
///
/// Decay applies to matrices only (embeddings, projections, conv B taps); norms, biases and temperatures,
/// whose scale is their meaning, are not decayed.
public struct AdamW<Scalar: TrainingScalar>: Sendable {
    public var beta1: Scalar = 0.9, beta2: Scalar = 0.95, epsilon: Scalar = 1e-8
    public var weightDecay: Scalar
    /// Updates taken so far (the bias-correction exponent).
    public var step: Int = 0
    /// First and second moments by parameter name.
    public var firstMoments: [String: TrainingTensor<Scalar>] = [:]
    public var secondMoments: [String: TrainingTensor<Scalar>] = [:]

    public init(weightDecay: Scalar) { self.weightDecay = weightDecay }

    /// One update of every parameter with its gradient at learning rate `rate`.
    public mutating func update(_ parameters: inout [String: TrainingTensor<Scalar>], grads: [String: TrainingTensor<Scalar>],
                                rate: Scalar) {
        step += 1
        let correction1 = 1 - Scalar.pow(beta1, step), correction2 = 1 - Scalar.pow(beta2, step)
        for name in parameters.keys.sorted() {
            guard let gradient = grads[name] else { continue }
            var m = firstMoments[name] ?? TrainingTensor(zeros: gradient.shape)
            var v = secondMoments[name] ?? TrainingTensor(zeros: gradient.shape)
            var parameter = parameters[name]!
            let decay = parameter.shape.count >= 2 ? weightDecay : 0
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
