import CCA
import Testing

/// The CPU decode engine against one ``DecodeSession`` per sequence: a step that mixes prompt chunks and
/// single tokens gives each slot the logits its own session gives.
@Suite struct ServeEngineTests {
    typealias Support = ServeTestSupport

    @Test(arguments: CPUDecodeEngine.Batching.allCases)
    func mixedStepsMatchOneSessionPerSequence(_ batching: CPUDecodeEngine.Batching) throws {
        let engine = CPUDecodeEngine(model: Support.model, batching: batching)
        #expect(engine.isBatchInvariant == (batching == .perSlot))
        // Three sequences fed in different chunkings over three steps: 7 | 1 | 1, 1 | 5 | 3, - | 2 | 1.
        let plans: [[[Int]]] = [[Support.prompt(7, seed: 1), [40], [41]], [[50], Support.prompt(5, seed: 2), Support.prompt(3, seed: 3)],
                                [[], Support.prompt(2, seed: 4), [60]]]
        let slots = try plans.map { _ in try engine.makeSlot(capacity: 16) }
        let sessions = try plans.map { _ in try Support.model.makeSession(capacity: 16) }
        for step in 0..<3 {
            let active = plans.indices.filter { !plans[$0][step].isEmpty }
            let logits = try engine.step(active.map { (slots[$0], plans[$0][step]) })
            for (index, sequence) in active.enumerated() {
                let expected = try sessions[sequence].feed(plans[sequence][step])
                if batching == .perSlot {
                    #expect(logits[index] == expected, "step \(step), sequence \(sequence)")
                } else {
                    let error = try Tensor<Float>(shape: [expected.count], storage: logits[index])
                        .relativeError(to: Tensor<Float>(shape: [expected.count], storage: expected))
                    #expect(error < 1e-5, "step \(step), sequence \(sequence)")
                }
            }
        }
        engine.freeSlot(slots[0])
        #expect(engine.slotCount == 2)
    }

    @Test func aRefusedStepChangesNoSlot() throws {
        let engine = CPUDecodeEngine(model: Support.model)
        let (a, b) = (try engine.makeSlot(capacity: 4), try engine.makeSlot(capacity: 4))
        #expect(throws: DecodeError.contextFull(capacity: 4, requested: 5)) { try engine.step([(a, [1, 2]), (b, [1, 2, 3, 4, 5])]) }
        #expect(throws: EmbeddingError.tokenOutOfRange(token: 300, vocabSize: 256)) { try engine.step([(a, [1, 2]), (b, [300])]) }
        #expect(throws: DecodeError.duplicateSequence(a)) { try engine.step([(a, [1]), (a, [2])]) }
        #expect(throws: DecodeError.unknownSequence(9)) { try engine.step([(9, [1])]) }
        #expect(throws: GenerationError.emptyPrompt) { try engine.step([(a, [])]) }
        // Both slots still hold nothing: four tokens fit in each.
        let session = try Support.model.makeSession(capacity: 4)
        #expect(try engine.step([(a, [1, 2, 3, 4])])[0] == session.feed([1, 2, 3, 4]))
        _ = try engine.step([(b, [5, 6, 7, 8])])
    }
}
