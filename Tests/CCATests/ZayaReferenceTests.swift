import CCA
import Foundation
import Testing

/// The ZAYA fixtures of `scripts/zaya_fixture.py`: random `ZayaForCausalLM`s saved by transformers, with
/// the inputs and transformers' logits.
enum ZayaFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let cases = ["zaya-mixed", "zaya-sharded-bf16"]

    static func path(_ name: String) -> String { root + "/" + name }

    struct Reference {
        var ids: [Int], mask: Tensor<Float>, batch: Int, length: Int
        var logits: Tensor<Float>
        /// transformers' own token-by-token decoding, for unpadded cases.
        var decodeLogits: Tensor<Float>?
    }

    static func reference(_ name: String) throws -> Reference {
        let file = try SafeTensors(contentsOf: path(name) + "/reference.safetensors")
        let ids = try file.integerTensor("input_ids")
        return Reference(ids: ids.storage.map { Int($0) }, mask: try file.integerTensor("attention_mask"),
                         batch: ids.shape[0], length: ids.shape[1], logits: try file.tensor("logits"),
                         decodeLogits: file["decode_logits"] == nil ? nil : try file.tensor("decode_logits"))
    }
}

/// Our logits against transformers' `ZayaForCausalLM` on small random models with both layer types, the
/// experts and the skip expert all chosen, padding, and tied or untied heads (float32 and bf16 weights).
@Suite struct ZayaReferenceTests {
    static let tolerance: Float = 1e-4

    /// The rows `rows` of logits `[…, vocab]`, stacked.
    static func rows(_ rows: [Int], of logits: Tensor<Float>, vocab: Int) throws -> Tensor<Float> {
        let values: [Float] = rows.flatMap { row in logits.storage[(row * vocab)..<((row + 1) * vocab)] }
        return try Tensor(shape: [rows.count, vocab], storage: values)
    }

    @Test(arguments: ZayaFixture.cases)
    func prefillMatchesTransformers(_ name: String) throws {
        let model = try ZayaModel(path: ZayaFixture.path(name))
        let reference = try ZayaFixture.reference(name)
        let vocab = model.config.vocabSize
        let logits = try model.logits(tokens: reference.ids, batch: reference.batch, length: reference.length, mask: reference.mask)
        #expect(logits.shape == [reference.batch, reference.length, vocab])
        let valid = reference.mask.storage.indices.filter { reference.mask.storage[$0] == 1 }
        let padded = reference.mask.storage.indices.filter { reference.mask.storage[$0] == 0 }
        let error = try Self.rows(valid, of: logits, vocab: vocab).relativeError(to: Self.rows(valid, of: reference.logits, vocab: vocab))
        #expect(error < Self.tolerance, "\(name): relative error \(error)")
        #expect(padded.allSatisfy { row in logits.storage[(row * vocab)..<((row + 1) * vocab)].allSatisfy { $0 == 0 } })
    }

    /// Token by token, and in uneven chunks, through the decode states: each unpadded sequence must give the
    /// reference's prefill logits, and transformers' own decoding where the fixture has it.
    @Test(arguments: ZayaFixture.cases)
    func decodingMatchesTransformers(_ name: String) throws {
        let model = try ZayaModel(path: ZayaFixture.path(name))
        let reference = try ZayaFixture.reference(name)
        let (length, vocab) = (reference.length, model.config.vocabSize)
        let unpadded = (0..<reference.batch).filter { b in (0..<length).allSatisfy { reference.mask.storage[b * length + $0] == 1 } }
        #expect(!unpadded.isEmpty)
        let ids = unpadded.flatMap { b in reference.ids[(b * length)..<((b + 1) * length)] }
        let rows = unpadded.flatMap { b in (0..<length).map { b * length + $0 } }
        for chunks in [[Int](repeating: 1, count: length), [4, 1, 0, 2, length - 7]] {
            let logits = try model.logits(tokens: ids, batch: unpadded.count, length: length, chunkLengths: chunks)
            let all = try Self.rows(Array(rows.indices), of: logits, vocab: vocab)
            let error = all.relativeError(to: try Self.rows(rows, of: reference.logits, vocab: vocab))
            #expect(error < Self.tolerance, "\(name) chunks \(chunks): relative error \(error) against the prefill")
            if let decoded = reference.decodeLogits {
                let decodeError = all.relativeError(to: try Self.rows(rows, of: decoded, vocab: vocab))
                #expect(decodeError < Self.tolerance, "\(name) chunks \(chunks): relative error \(decodeError) against transformers' decoding")
            }
        }
    }

    /// The CPU engine behind `cca serve --model`: two slots fed the same unpadded sequence in different
    /// chunks in the same steps give transformers' logits at each chunk's end, and a refused step (a token
    /// outside the vocabulary in one chunk) changes neither slot.
    @Test func cpuEngineSlotsMatchTransformers() throws {
        let name = "zaya-mixed"
        let model = try ZayaModel(path: ZayaFixture.path(name))
        let reference = try ZayaFixture.reference(name)
        let (length, vocab) = (reference.length, model.config.vocabSize)
        let b = try #require((0..<reference.batch).first { b in (0..<length).allSatisfy { reference.mask.storage[b * length + $0] == 1 } })
        let ids = Array(reference.ids[(b * length)..<((b + 1) * length)])
        let engine = CPUZayaDecodeEngine(model: model)
        let (first, second) = (try engine.makeSlot(capacity: length), try engine.makeSlot(capacity: length))
        #expect(throws: EmbeddingError.tokenOutOfRange(token: vocab, vocabSize: vocab)) {
            try engine.step([(slot: first, tokens: [ids[0]]), (slot: second, tokens: [ids[0], vocab])])
        }
        // Slot `first` takes 3 tokens, then the rest one by one; `second` takes 1, then the rest in twos.
        var fed = [first: 0, second: 0]
        while fed.values.contains(where: { $0 < length }) {
            let chunks = [(first, fed[first]! == 0 ? 3 : 1), (second, fed[second]! == 0 ? 1 : 2)].compactMap { slot, size -> (slot: Int, tokens: [Int])? in
                let start = fed[slot]!
                return start < length ? (slot, Array(ids[start..<min(length, start + size)])) : nil
            }
            let logits = try engine.step(chunks)
            for (chunk, row) in zip(chunks, logits) {
                fed[chunk.slot]! += chunk.tokens.count
                let expected = try Self.rows([b * length + fed[chunk.slot]! - 1], of: reference.logits, vocab: vocab)
                let error = try Tensor(shape: [1, vocab], storage: row).relativeError(to: expected)
                #expect(error < Self.tolerance, "slot \(chunk.slot) after \(fed[chunk.slot]!) tokens: relative error \(error)")
            }
        }
        #expect(throws: DecodeError.contextFull(capacity: length, requested: length + 1)) { try engine.step([(slot: first, tokens: [ids[0]])]) }
    }

    /// A session fed the prompt, then one token at a time, returns each last token's logits.
    @Test func sessionMatchesTransformers() throws {
        let name = "zaya-sharded-bf16"
        let model = try ZayaModel(path: ZayaFixture.path(name))
        let reference = try ZayaFixture.reference(name)
        let vocab = model.config.vocabSize
        let session = try ZayaSession(model: model, capacity: reference.length)
        var steps = [try session.feed(Array(reference.ids[0..<3]))]
        for t in 3..<reference.length { steps.append(try session.feed([reference.ids[t]])) }
        let actual = try Tensor(shape: [steps.count, vocab], storage: steps.flatMap { $0 })
        let error = actual.relativeError(to: try Self.rows(Array(2..<reference.length), of: reference.logits, vocab: vocab))
        #expect(error < Self.tolerance, "relative error \(error)")
        #expect(throws: GenerationError.contextExceeded(requested: reference.length + 1, capacity: reference.length)) {
            try session.feed([1])
        }
    }

    @Test func configAndStopTokensAreRead() throws {
        let model = try ZayaModel(path: ZayaFixture.path("zaya-mixed"))
        let config = model.config
        #expect(config.resolvedLayerTypes == [.hybrid, .hybridSliding, .hybrid])
        #expect(config.slidingWindow == 4)
        #expect(try config.attention(.hybridSliding).slidingWindow == 4)
        #expect(try config.attention(.hybrid).slidingWindow == nil)
        #expect(try config.attention(.hybridSliding).rope == RoPEConfig(theta: 10_000, fraction: 1))
        #expect(model.stopTokenIDs == [2])
    }

    /// The defaults are transformers' `ZayaConfig()` (ZAYA1-8B), as it writes them to a config.json.
    @Test func defaultsAreTransformersDefaults() throws {
        let written = try ZayaConfig(contentsOf: ZayaFixture.path("zaya1-8b-config.json"))
        var expected = ZayaConfig()
        expected.layerTypes = Array(repeating: .hybrid, count: 40)
        #expect(written == expected)
    }
}
