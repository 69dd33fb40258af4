extension CUDASelfTest {
    /// ``DeviceDecodeEngine`` against the CPU decode (``DecodeSession``, one per sequence, fed the same chunks)
    /// for every attention kind: sequences join and leave between steps, prompts arrive in chunks of 7, 1, 1, 5
    /// and of 70 (more rows than one decode-attention launch takes, and across a page), single tokens
    /// alongside, and a late sequence reuses the pages a finished one gave back. In float32 the logits agree
    /// to rounding (the common 1e-4). In bfloat16 the model's weights are rounded first, but the GPU also
    /// stores every activation and the cache in bfloat16 through two blocks while the CPU computes in float32:
    /// the stated tolerance is 5e-2 (2.2e-2 was the worst seen, MHA, on the emulator).
    static var decodeEngineCases: [Case] {
        // Per step, the chunk lengths of the sequences in it; a sequence leaves after its last step.
        let schedule: [[String: Int]] = [["A": 7, "B": 1], ["A": 1, "B": 1, "C": 70], ["A": 1, "B": 1, "C": 1],
                                         ["A": 5, "B": 1], ["B": 1, "D": 3], ["B": 1, "D": 1]]
        let names = ["A", "B", "C", "D"]
        let lastStep = Dictionary(uniqueKeysWithValues: names.map { name in (name, schedule.lastIndex { $0[name] != nil }!) })
        return AttentionKind.allCases.map { kind in
            Case(name: "decode engine \(kind.rawValue) chunks 7,1,1,5 / 70,1 / 1,... join+leave", bfloat16Tolerance: 5e-2) { context, precision in
                let config = LanguageModelConfig(attention: kind, hiddenSize: 128, layers: 2, heads: 4, headDim: 64,
                                                 intermediateSize: 128, tiedEmbeddings: kind != .mha)
                let initial = try LanguageModel<Float>(config: config, seed: 7)
                let model = try LanguageModel<Float>(config: config, parameters: initial.parameters.mapValues { representable($0, precision) })
                // Two pages per sequence and three at a time: D fits only in pages that C gave back.
                let engine = try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: 6 * DecodeAttention.pageTokens,
                                                    maxSequences: 3, context: context)
                var generator = SplitMix64(seed: 11)
                var slots: [String: Int] = [:], sessions: [String: DecodeSession<Float>] = [:]
                var pairs: [(gpu: Tensor<Float>, reference: Tensor<Float>)] = []
                for (index, step) in schedule.enumerated() {
                    let order = step.keys.sorted()
                    for name in order where slots[name] == nil {
                        slots[name] = try engine.makeSlot(capacity: 80)
                        sessions[name] = try model.makeSession(capacity: 80)
                    }
                    let chunks = order.map { name in
                        (slot: slots[name]!, tokens: (0..<step[name]!).map { _ in Int(generator.next() % UInt64(config.vocabSize)) })
                    }
                    let logits = try engine.step(chunks)
                    for (name, (chunk, gpu)) in zip(order, zip(chunks, logits)) {
                        let reference = try sessions[name]!.feed(chunk.tokens)
                        pairs.append((Tensor(checked: [gpu.count], gpu), Tensor(checked: [reference.count], reference)))
                        if lastStep[name] == index { engine.freeSlot(slots[name]!) }
                    }
                }
                return pairs
            }
        }
    }
}
