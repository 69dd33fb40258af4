@testable import CCA
import Testing

/// The inference model agrees with the training model, and decoding agrees with the full pass.
@Suite struct InferenceModelTests {
    @Test(arguments: AttentionKind.allCases)
    func lossMatchesTheTrainingModelAndDecodingMatchesTheFullPass(_ kind: AttentionKind) throws {
        var config = LanguageModelConfig.preset(.tiny, attention: kind)
        config.tiedEmbeddings = kind != .gqa
        let training = try LanguageModel<Float>(config: config, seed: 3)
        let model = try InferenceModel(config: config, parameters: training.parameters.tensors())
        var generator = SplitMix64(seed: 4)
        let tokens = (0..<24).map { _ in Int(generator.next() % UInt64(config.vocabSize)) }
        let targets = Array(tokens.dropFirst()) + [0]
        let logits = try model.logits(tokens: tokens, batch: 2)
        let inferenceLoss = CrossEntropy.lossAndGradient(logits: logits.storage, targets: targets, vocab: config.vocabSize).loss
        let trainingLoss = try training.lossAndGradients(inputs: tokens, targets: targets, batch: 2).loss
        #expect(abs(inferenceLoss - trainingLoss) < 1e-5 * abs(trainingLoss))

        // The second row of the batch, decoded in chunks 5, 1, 6: the last logits of each chunk match.
        let row = Array(tokens[12...])
        let full = try model.logits(tokens: row, batch: 1)
        let session = model.makeSession(capacity: 12)
        var fed = 0
        for chunk in [5, 1, 6] {
            let last = try session.feed(Array(row[fed..<(fed + chunk)]))
            fed += chunk
            let expected = try Tensor(shape: [config.vocabSize], storage: Array(full.storage[((fed - 1) * config.vocabSize)..<(fed * config.vocabSize)]))
            #expect(try Tensor(shape: [config.vocabSize], storage: last).relativeError(to: expected) < 1e-5, "\(kind) after \(fed)")
        }
        #expect(throws: GenerationError.contextExceeded(requested: 13, capacity: 12)) { try session.feed([1]) }
        #expect(throws: GenerationError.emptyPrompt) { try model.makeSession(capacity: 4).feed([]) }
        #expect(throws: GenerationError.tokenOutOfRange(token: 999, vocabSize: config.vocabSize)) { try model.logits(tokens: [999], batch: 1) }
    }
}
