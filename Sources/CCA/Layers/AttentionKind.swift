/// The five attention methods of the report: what a language model is built with, and what the cost
/// table, the benchmarks and the tour compare side by side.
public enum AttentionKind: String, Codable, CaseIterable, Sendable {
    case mha, gqa, mla, cca, ccgqa
}
