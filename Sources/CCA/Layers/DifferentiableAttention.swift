/// An attention layer that can train: a forward pass that keeps what its backward pass needs, and that
/// backward pass, both generic over the scalar so gradient checks run the training code in `Double`.
///
/// Training runs whole sequences from position 0 without padding masks; the results equal the layer's
/// inference ``AttentionLayer/forward(_:mask:)`` (to rounding) on unmasked input.
public protocol DifferentiableAttention<Scalar>: Sendable {
    associatedtype Scalar: TrainingScalar
    /// The intermediate values the backward pass reads, kept by ``forwardForTraining(_:)``.
    associatedtype Activations

    /// Model width E.
    var hiddenSize: Int { get }
    /// The parameters under the layer's interchange names.
    var weights: [String: TrainingTensor<Scalar>] { get }

    /// `y` `[B, S, E]` for `x` `[B, S, E]`, and the activations for ``backward(_:_:)``.
    func forwardForTraining(_ x: TrainingTensor<Scalar>) -> (y: TrainingTensor<Scalar>, activations: Activations)

    /// `dx` for the output gradient `dy`, and the gradient of every weight under its name in ``weights``.
    func backward(_ dy: TrainingTensor<Scalar>, _ activations: Activations)
        -> (dx: TrainingTensor<Scalar>, grads: [String: TrainingTensor<Scalar>])
}

extension DifferentiableAttention {
    /// The forward pass and a closure running the matching backward pass: lets a model hold layers of
    /// different kinds (and activation types) side by side.
    public func pullback(_ x: TrainingTensor<Scalar>)
        -> (y: TrainingTensor<Scalar>, backward: (TrainingTensor<Scalar>) -> (dx: TrainingTensor<Scalar>, grads: [String: TrainingTensor<Scalar>])) {
        let (y, activations) = forwardForTraining(x)
        return (y, { backward($0, activations) })
    }
}
