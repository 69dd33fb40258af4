import CCA
import Testing

/// Prefill plus continuation equals one full forward pass, for every attention kind and any chunking.
@Suite struct DecodingTests {
    static let hidden = 32

    static func layers() throws -> [(String, any AttentionLayer<Float>)] {
        [
            ("mha", try GQA<Float>(config: .mha(hiddenSize: hidden, heads: 4), seed: 1)),
            ("gqa", try GQA<Float>(config: GQAConfig(hiddenSize: hidden, queryHeads: 4, keyValueHeads: 2, rope: RoPEConfig(theta: 100, fraction: 0.5)), seed: 2)),
            ("mla", try MLA<Float>(config: MLAConfig(hiddenSize: hidden, heads: 2, queryRank: 16, keyValueRank: 8, noPEHeadDim: 8,
                                              ropeHeadDim: 4, valueHeadDim: 6), seed: 3)),
            ("cca", try CCA<Float>(config: CCAConfig(hiddenSize: hidden, queryHeads: 2, keyValueHeads: 2, headDim: 8), seed: 4)),
            ("ccgqa", try CCA<Float>(config: CCAConfig(hiddenSize: hidden, queryHeads: 4, keyValueHeads: 1, headDim: 8, temperature: .exp), seed: 5)),
            ("cca-1conv", try CCA<Float>(config: CCAConfig(hiddenSize: hidden, queryHeads: 2, keyValueHeads: 2, headDim: 8, convolutions: 1), seed: 6)),
            ("cca-ablated", try CCA<Float>(config: CCAConfig(hiddenSize: hidden, queryHeads: 4, keyValueHeads: 2, headDim: 8, convolutions: 0,
                                                      qkMean: false, valueShift: false), seed: 7)),
        ]
    }

    /// Random chunk lengths summing to `length`, with zero-length chunks allowed.
    static func randomChunks(_ length: Int, _ generator: inout SplitMix64) -> [Int] {
        var chunks: [Int] = [], left = length
        while left > 0 {
            let next = min(left, Int(generator.next() % 6))
            chunks.append(next)
            left -= next
        }
        return chunks
    }

    @Test func everyChunkingOfARaggedBatchMatchesTheFullPass() throws {
        var generator = SplitMix64(seed: 42)
        for (name, layer) in try Self.layers() {
            try checkRaggedBatch(layer, name: name, generator: &generator)
        }
    }

    private func checkRaggedBatch(_ layer: any AttentionLayer<Float>, name: String, generator: inout SplitMix64) throws {
        let lengths = [1, 9, 70, 13]
        let sequences = lengths.enumerated().map { Tensor<Float>(randomNormal: [$0.element, Self.hidden], seed: UInt64(100 + $0.offset)) }
        let expected = try sequences.map { try layer.forward($0.reshaped([1, $0.shape[0], Self.hidden])) }
        // Chunkings: all at once, one token at a time, random; the batch advances them together.
        for strategy in 0..<3 {
            let chunkings = lengths.map { length -> [Int] in
                switch strategy {
                case 0: return [length]
                case 1: return [Int](repeating: 1, count: length)
                default: return Self.randomChunks(length, &generator)
                }
            }
            let states = try lengths.map { try layer.makeState(capacity: $0) }
            var outputs = lengths.map { _ in [Float]() }
            var consumed = lengths.map { _ in 0 }, step = 0
            while zip(consumed, lengths).contains(where: { $0 < $1 }) {
                let chunks = try lengths.indices.map { i -> Tensor<Float> in
                    let size = step < chunkings[i].count ? chunkings[i][step] : 0
                    defer { consumed[i] += size }
                    return try Tensor<Float>(shape: [size, Self.hidden],
                                      storage: Array(sequences[i].storage[(consumed[i] * Self.hidden)..<((consumed[i] + size) * Self.hidden)]))
                }
                let results = try layer.decode(chunks, states: states)
                for i in lengths.indices { outputs[i] += results[i].storage }
                step += 1
            }
            for i in lengths.indices {
                let decoded = try Tensor<Float>(shape: [1, lengths[i], Self.hidden], storage: outputs[i])
                #expect(decoded.relativeError(to: expected[i]) < 1e-5, "\(name) strategy \(strategy) sequence \(i)")
                #expect(states[i].length == lengths[i])
            }
        }
    }

    @Test func stateMemoryIsTheCostModelsCachePlusTheFixedState() throws {
        let config = CCAConfig(hiddenSize: 64, queryHeads: 4, keyValueHeads: 2, headDim: 8)
        let cca = try CCA<Float>(config: config)
        let state = try cca.makeState(capacity: 1000)
        #expect(state.cacheBytes == config.cost.cacheElements(length: 1000) * 4)
        #expect(state.fixedStateBytes == (2 * config.convolutionChannels + config.keyWidth / 2) * 4)
        let mlaConfig = MLAConfig(hiddenSize: 64, heads: 4, queryRank: 32, keyValueRank: 16, noPEHeadDim: 16, ropeHeadDim: 8, valueHeadDim: 16)
        #expect(try MLA<Float>(config: mlaConfig).makeState(capacity: 1000).bytes == mlaConfig.cost.cacheElements(length: 1000) * 4)
        let gqaConfig = GQAConfig(hiddenSize: 64, queryHeads: 8, keyValueHeads: 2)
        #expect(try GQA<Float>(config: gqaConfig).makeState(capacity: 1000).bytes == gqaConfig.cost.cacheElements(length: 1000) * 4)
    }

    @Test func sequencesJoinAndLeaveARunningBatch() throws {
        let layer = try CCA<Float>(config: CCAConfig(hiddenSize: Self.hidden, queryHeads: 4, keyValueHeads: 2, headDim: 8), seed: 8)
        let batch = DecodeBatch<Float>(layer: layer)
        let a = Tensor<Float>(randomNormal: [6, Self.hidden], seed: 9), b = Tensor<Float>(randomNormal: [4, Self.hidden], seed: 10)
        func rows(_ t: Tensor<Float>, _ range: Range<Int>) throws -> Tensor<Float> {
            try Tensor<Float>(shape: [range.count, Self.hidden], storage: Array(t.storage[(range.lowerBound * Self.hidden)..<(range.upperBound * Self.hidden)]))
        }
        try batch.add(1, capacity: 6)
        var outA = try batch.step([1: rows(a, 0..<3)])[1]!.storage
        try batch.add(2, capacity: 4)
        let both = try batch.step([1: rows(a, 3..<4), 2: rows(b, 0..<3)])
        outA += both[1]!.storage
        var outB = both[2]!.storage
        outB += try batch.step([2: rows(b, 3..<4)])[2]!.storage
        try batch.remove(2)
        outA += try batch.step([1: rows(a, 4..<6)])[1]!.storage
        #expect(batch.sequenceIDs == [1])
        #expect(try Tensor<Float>(shape: [1, 6, Self.hidden], storage: outA).relativeError(to: layer.forward(a.reshaped([1, 6, Self.hidden]))) < 1e-5)
        #expect(try Tensor<Float>(shape: [1, 4, Self.hidden], storage: outB).relativeError(to: layer.forward(b.reshaped([1, 4, Self.hidden]))) < 1e-5)
        #expect(throws: DecodeError.contextFull(capacity: 6, requested: 7)) { try batch.step([1: rows(a, 0..<1)]) }
        #expect(throws: DecodeError.unknownSequence(2)) { try batch.step([2: rows(b, 0..<1)]) }
        #expect(throws: DecodeError.duplicateSequence(1)) { try batch.add(1, capacity: 3) }
    }

    @Test func forwardInChunksChecksTheChunkLengths() throws {
        let layer = try GQA<Float>(config: GQAConfig(hiddenSize: Self.hidden, queryHeads: 2, keyValueHeads: 2), seed: 11)
        let x = Tensor<Float>(randomNormal: [14, Self.hidden], seed: 12)
        let full = try layer.forward(x.reshaped([1, 14, Self.hidden]))
        #expect(try layer.forwardInChunks(x, chunkLengths: [7, 1, 1, 5]).relativeError(to: full) < 1e-5)
        #expect(throws: DecodeError.chunksDoNotSum(chunks: [7, 1], length: 14)) { try layer.forwardInChunks(x, chunkLengths: [7, 1]) }
    }
}
