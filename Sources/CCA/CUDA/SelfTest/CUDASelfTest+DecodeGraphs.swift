extension CUDASelfTest {
    /// ``DeviceDecodeEngine`` replaying its single-token steps as CUDA graphs against the same engine with
    /// graphs off, fed the same steps: for every attention kind and for a ZAYA model. Prompts of 500 and 3
    /// tokens, then single tokens until the long sequence passes 512 (a new context size class, so a second
    /// graph); a third sequence joins with a prompt (an uncaptured step) and decodes alongside, and one leaves.
    /// The logits of a replay come from the same kernels with the same arguments as the uncaptured step, so
    /// they should agree to the last bit; the case also fails unless graphs were captured and replayed.
    static var decodeGraphCases: [Case] {
        let kinds = AttentionKind.allCases.map { kind in
            Case(name: "decode graphs \(kind.rawValue) replays = uncaptured steps") { context, precision in
                let config = LanguageModelConfig(attention: kind, hiddenSize: 128, layers: 2, heads: 4, headDim: 64,
                                                 intermediateSize: 128, tiedEmbeddings: kind != .mha)
                let model = try LanguageModel<Float>(config: config, seed: 5)
                func engine(graphs: Bool) throws -> DeviceDecodeEngine {
                    let engine = try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: 3 * 600, maxSequences: 3,
                                                        context: context)
                    engine.usesGraphs = graphs
                    return engine
                }
                return try compareGraphReplays(engine(graphs: true), engine(graphs: false), vocab: config.vocabSize)
            }
        }
        let zaya = Case(name: "decode graphs zaya \(zayaModels[0].name) replays = uncaptured steps") { context, precision in
            try withRandomZaya(zayaModels[0].config, precision: precision) { zaya in
                func engine(graphs: Bool) throws -> DeviceDecodeEngine {
                    let engine = try DeviceDecodeEngine(zaya: zaya, precision: precision, cacheTokens: 3 * 600, maxSequences: 3,
                                                        context: context)
                    engine.usesGraphs = graphs
                    return engine
                }
                return try compareGraphReplays(engine(graphs: true), engine(graphs: false), vocab: zaya.config.vocabSize)
            }
        }
        return kinds + [zaya]
    }

    /// The schedule of ``decodeGraphCases`` run on both engines; the pairs are (graphs, no graphs) per chunk.
    static func compareGraphReplays(_ graphed: DeviceDecodeEngine, _ plain: DeviceDecodeEngine, vocab: Int) throws
        -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        var generator = SplitMix64(seed: 29)
        func tokens(_ count: Int) -> [Int] { (0..<count).map { _ in Int(generator.next() % UInt64(vocab)) } }
        var slots: [String: (graphed: Int, plain: Int)] = [:]
        var pairs: [(gpu: Tensor<Float>, reference: Tensor<Float>)] = []
        func step(_ chunks: [(name: String, tokens: [Int])]) throws {
            for chunk in chunks where slots[chunk.name] == nil {
                slots[chunk.name] = (try graphed.makeSlot(capacity: 600), try plain.makeSlot(capacity: 600))
            }
            let fromGraphs = try graphed.step(chunks.map { (slots[$0.name]!.graphed, $0.tokens) })
            let fromPlain = try plain.step(chunks.map { (slots[$0.name]!.plain, $0.tokens) })
            for (a, b) in zip(fromGraphs, fromPlain) { pairs.append((Tensor(checked: [a.count], a), Tensor(checked: [b.count], b))) }
        }
        try step([("A", tokens(500)), ("B", tokens(3))])
        for _ in 0..<16 { try step([("A", tokens(1)), ("B", tokens(1))]) }  // A passes 512 tokens: a second class
        try step([("A", tokens(1)), ("B", tokens(1)), ("C", tokens(6))])
        for _ in 0..<4 { try step([("A", tokens(1)), ("B", tokens(1)), ("C", tokens(1))]) }
        graphed.freeSlot(slots["B"]!.graphed)
        plain.freeSlot(slots["B"]!.plain)
        for _ in 0..<4 { try step([("A", tokens(1)), ("C", tokens(1))]) }
        if let failure = graphed.graphFailure { throw CUDAError.unsupported("capturing a decode step failed: \(failure)") }
        guard graphed.graphCaptures >= 3, graphed.graphReplays >= 15, plain.graphCaptures == 0 else {
            throw CUDAError.unsupported("expected at least 3 captured and 15 replayed steps with graphs (and none without), got "
                                        + "\(graphed.graphCaptures) and \(graphed.graphReplays) (\(plain.graphCaptures) without)")
        }
        return pairs
    }
}
