/// A top-1 mixture of SwiGLU experts whose weights stay in their file, in transformers' stacked layout:
/// `gate_up_proj` `[N, 2I, E]` (gate rows first) and `down_proj` `[N, E, I]`. Forward only.
///
/// Each expert runs once on all the rows routed to it, gathered into one block, so a batch or a prompt
/// reads every chosen expert's weights once.
public enum MixtureOfExperts {
    /// `weights[r] · down_e(silu(gate_e · x[r]) ∘ up_e · x[r])` for each row `r` routed to expert
    /// `e = experts[r]`; 0 for a row routed to no expert (ZAYA's skip expert, or padding).
    public static func forward(_ x: Tensor<Float>, experts: [Int?], weights: [Float], gateUp: StoredTensor, down: StoredTensor) -> Tensor<Float> {
        let width = down.shape[1]
        precondition(x.count == experts.count * width && weights.count == experts.count, "experts: \(experts.count) rows for input \(x.shape)")
        var y = Tensor<Float>(zeros: [experts.count, width])
        var rowsOf: [Int: [Int]] = [:]
        for (row, expert) in experts.enumerated() { if let expert { rowsOf[expert, default: []].append(row) } }
        for (expert, rows) in rowsOf.sorted(by: { $0.key < $1.key }) {
            var gathered = Tensor<Float>(zeros: [rows.count, width])
            for (index, row) in rows.enumerated() {
                gathered.storage[(index * width)..<((index + 1) * width)] = x.storage[(row * width)..<((row + 1) * width)]
            }
            let hidden = SwiGLU.forward(Linear.forward(gathered, stored: gateUp.slice(expert))).h
            let out = Linear.forward(hidden, stored: down.slice(expert))
            for (index, row) in rows.enumerated() {
                for c in 0..<width { y.storage[row * width + c] = weights[row] * out.storage[index * width + c] }
            }
        }
        return y
    }
}
