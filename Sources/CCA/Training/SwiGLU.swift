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

    /// The backward pass reuses `σ(gate)` rather than paying for the exponentials again.
    struct Activations {
        var x: [S], gate: [S], gateSigmoid: [S], up: [S], hidden: [S]
    }

    func forward(_ x: [S], rows: Int) -> ([S], Activations) {
        let g = LinearTraining.forward(x, rows: rows, weight: gate), u = LinearTraining.forward(x, rows: rows, weight: up)
        // σ(z) = 1 / (1 + exp(−z)), the exponentials in one vectorised pass.
        var sigmoid = g.map { -$0 }
        sigmoid.withUnsafeMutableBufferPointer { S.exponentiate($0.baseAddress!, count: $0.count) }
        for i in sigmoid.indices { sigmoid[i] = 1 / (1 + sigmoid[i]) }
        let hidden = (0..<g.count).map { g[$0] * sigmoid[$0] * u[$0] }
        return (LinearTraining.forward(hidden, rows: rows, weight: down),
                Activations(x: x, gate: g, gateSigmoid: sigmoid, up: u, hidden: hidden))
    }

    /// `dx` and the gradients under the weight names.
    func backward(_ dy: [S], _ saved: Activations) -> (dx: [S], grads: [String: TrainingTensor<S>]) {
        let rows = saved.x.count / gate.shape[1]
        var dHidden = [S](repeating: 0, count: saved.hidden.count)
        let dDown = LinearTraining.backward(dy, x: saved.hidden, rows: rows, weight: down, dx: &dHidden)
        var dGate = dHidden, dUp = dHidden
        for i in 0..<dHidden.count {
            let z = saved.gate[i], sigma = saved.gateSigmoid[i]
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
