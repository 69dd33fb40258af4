import RealModule

/// The SwiGLU feed-forward block `down(silu(gate(x)) ∘ up(x))` with its backward pass.
///
/// Weights (Llama names): `gate_proj.weight` and `up_proj.weight` `[I, E]`, `down_proj.weight` `[E, I]`.
struct SwiGLU<S: TrainingScalar> {
    let gate: TrainingTensor<S>, up: TrainingTensor<S>, down: TrainingTensor<S>

    static func weightShapes(hiddenSize: Int, intermediateSize: Int) -> [String: [Int]] {
        ["gate_proj.weight": [intermediateSize, hiddenSize], "up_proj.weight": [intermediateSize, hiddenSize],
         "down_proj.weight": [hiddenSize, intermediateSize]]
    }

    init(weights: [String: TrainingTensor<S>]) {
        (gate, up, down) = (weights["gate_proj.weight"]!, weights["up_proj.weight"]!, weights["down_proj.weight"]!)
    }

    struct Activations {
        var x: [S], gate: [S], up: [S], hidden: [S]
    }

    static func sigmoid(_ z: S) -> S { 1 / (1 + S.exp(-z)) }

    func forward(_ x: [S], rows: Int) -> ([S], Activations) {
        let g = LinearTraining.forward(x, rows: rows, weight: gate), u = LinearTraining.forward(x, rows: rows, weight: up)
        let hidden = (0..<g.count).map { g[$0] * Self.sigmoid(g[$0]) * u[$0] }
        return (LinearTraining.forward(hidden, rows: rows, weight: down), Activations(x: x, gate: g, up: u, hidden: hidden))
    }

    /// `dx` and the gradients under the weight names.
    func backward(_ dy: [S], _ saved: Activations) -> (dx: [S], grads: [String: TrainingTensor<S>]) {
        let rows = saved.x.count / gate.shape[1]
        var dHidden = [S](repeating: 0, count: saved.hidden.count)
        let dDown = LinearTraining.backward(dy, x: saved.hidden, rows: rows, weight: down, dx: &dHidden)
        var dGate = dHidden, dUp = dHidden
        for i in 0..<dHidden.count {
            let z = saved.gate[i], sigma = Self.sigmoid(z)
            dUp[i] = dHidden[i] * z * sigma
            // d silu(z)/dz = σ(z)·(1 + z·(1 − σ(z)))
            dGate[i] = dHidden[i] * saved.up[i] * sigma * (1 + z * (1 - sigma))
        }
        var dx = [S](repeating: 0, count: saved.x.count)
        let dGateWeight = LinearTraining.backward(dGate, x: saved.x, rows: rows, weight: gate, dx: &dx)
        let dUpWeight = LinearTraining.backward(dUp, x: saved.x, rows: rows, weight: up, dx: &dx, accumulate: true)
        return (dx, ["gate_proj.weight": dGateWeight, "up_proj.weight": dUpWeight, "down_proj.weight": dDown])
    }
}
