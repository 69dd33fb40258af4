/// The SwiGLU feed-forward block `down(silu(gate(x)) ∘ up(x))`, with its backward pass.
///
/// Weights (Llama names): `gate_proj.weight` and `up_proj.weight` `[I, E]`, `down_proj.weight` `[E, I]`.
public struct MLP<Scalar: TensorScalar>: Sendable {
    public let gate: Tensor<Scalar>, up: Tensor<Scalar>, down: Tensor<Scalar>

    public static func weightShapes(hiddenSize: Int, intermediateSize: Int) -> [String: [Int]] {
        ["gate_proj.weight": [intermediateSize, hiddenSize], "up_proj.weight": [intermediateSize, hiddenSize],
         "down_proj.weight": [hiddenSize, intermediateSize]]
    }

    /// The block with `weights` under the names of ``weightShapes(hiddenSize:intermediateSize:)``.
    public init(hiddenSize: Int, intermediateSize: Int, weights: [String: Tensor<Scalar>]) throws {
        let taken = try WeightDictionary(weights).take(Self.weightShapes(hiddenSize: hiddenSize, intermediateSize: intermediateSize))
        (gate, up, down) = (taken["gate_proj.weight"]!, taken["up_proj.weight"]!, taken["down_proj.weight"]!)
    }

    public struct Saved: Sendable {
        var x: Tensor<Scalar>, gateUp: Tensor<Scalar>, sigmoid: [Scalar], hidden: Tensor<Scalar>
    }

    /// `y` `[rows, E]` for `x` `[rows, E]`, and what the backward pass reads.
    public func forward(_ x: Tensor<Scalar>) -> (y: Tensor<Scalar>, saved: Saved) {
        let gateUp = Linear.forward(x, [gate, up])
        let (hidden, sigmoid) = SwiGLU.forward(gateUp)
        return (Linear.forward(hidden, down), Saved(x: x, gateUp: gateUp, sigmoid: sigmoid, hidden: hidden))
    }

    /// `dx` and the gradients under the weight names.
    public func backward(_ dy: Tensor<Scalar>, _ saved: Saved) -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>]) {
        let (dHidden, dDown) = Linear.backward(dy, x: saved.hidden, weight: down)
        let dGateUp = SwiGLU.backward(dHidden, gateUp: saved.gateUp, sigmoid: saved.sigmoid)
        var dx = Tensor<Scalar>(zeros: saved.x.shape)
        let dWeights = Linear.backward(dGateUp, x: saved.x, weights: [gate, up], dx: &dx).dWeights
        return (dx, ["gate_proj.weight": dWeights[0], "up_proj.weight": dWeights[1], "down_proj.weight": dDown])
    }
}
