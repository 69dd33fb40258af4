@testable import CCA
import Testing

/// The model's loss without kept activations equals its training loss, and decoding agrees with the full pass.
@Suite struct LanguageModelDecodingTests {
    @Test(arguments: AttentionKind.allCases)
    func lossMatchesTheTrainingModelAndDecodingMatchesTheFullPass(_ kind: AttentionKind) throws {
        var config = LanguageModelConfig.preset(.tiny, attention: kind)
        config.tiedEmbeddings = kind != .gqa
        let model = try LanguageModel<Float>(config: config, seed: 3)
        var generator = SplitMix64(seed: 4)
        let tokens = (0..<24).map { _ in Int(generator.next() % UInt64(config.vocabSize)) }
        let targets = Array(tokens.dropFirst()) + [0]
        let inferenceLoss = try model.loss(inputs: tokens, targets: targets, layout: SequenceLayout(batch: 2, length: 12))
        let trainingLoss = try model.lossAndGradients(inputs: tokens, targets: targets, batch: 2).loss
        #expect(abs(inferenceLoss - trainingLoss) < 1e-5 * abs(trainingLoss))

        // The second row of the batch, decoded in chunks 5, 1, 6: the last logits of each chunk match.
        let row = Array(tokens[12...])
        let full = try model.logits(tokens: row, batch: 1)
        let session = try model.makeSession(capacity: 12)
        var fed = 0
        for chunk in [5, 1, 6] {
            let last = try session.feed(Array(row[fed..<(fed + chunk)]))
            fed += chunk
            let expected = try Tensor<Float>(shape: [config.vocabSize], storage: Array(full.storage[((fed - 1) * config.vocabSize)..<(fed * config.vocabSize)]))
            #expect(try Tensor<Float>(shape: [config.vocabSize], storage: last).relativeError(to: expected) < 1e-5, "\(kind) after \(fed)")
        }
        #expect(throws: GenerationError.contextExceeded(requested: 13, capacity: 12)) { try session.feed([1]) }
        #expect(throws: GenerationError.emptyPrompt) { try model.makeSession(capacity: 4).feed([]) }
        #expect(throws: EmbeddingError.tokenOutOfRange(token: 999, vocabSize: config.vocabSize)) { try model.logits(tokens: [999], batch: 1) }
    }
}
