import Testing
@testable import CCA

/// How a GPU decode step cuts its chunks into decode-attention launches (no GPU needed): every row is covered
/// once, in order, each piece attends exactly up to its own last row, and equal neighbouring pieces share a launch.
@Suite struct DecodeStepPlanTests {
    typealias Piece = DeviceDecodeStep.Piece

    @Test func singleTokensAreOneLaunch() {
        let plan = DeviceDecodeStep.attentionPlan(lengths: [1, 1, 1], starts: [5, 0, 99], limit: 16)
        #expect(plan == [[Piece(firstRow: 0, rows: 1, sequence: 0, context: 6), Piece(firstRow: 1, rows: 1, sequence: 1, context: 1),
                          Piece(firstRow: 2, rows: 1, sequence: 2, context: 100)]])
    }

    @Test func longChunksAreCutAtTheLimit() {
        // A 70-row prompt after 3 cached tokens, then a single token of another sequence: pieces of 32, 32, 6, 1.
        let plan = DeviceDecodeStep.attentionPlan(lengths: [70, 1], starts: [3, 10], limit: 32)
        #expect(plan == [[Piece(firstRow: 0, rows: 32, sequence: 0, context: 35), Piece(firstRow: 32, rows: 32, sequence: 0, context: 67)],
                         [Piece(firstRow: 64, rows: 6, sequence: 0, context: 73)],
                         [Piece(firstRow: 70, rows: 1, sequence: 1, context: 11)]])
    }

    @Test(arguments: [1, 3, 8, 64])
    func everyRowIsCoveredOnceInOrder(limit: Int) {
        let lengths = [7, 1, 1, 5, 70, 0, 2], starts = [0, 7, 8, 9, 0, 4, 1]
        let plan = DeviceDecodeStep.attentionPlan(lengths: lengths, starts: starts, limit: limit)
        var expectedRow = 0
        for run in plan {
            #expect(Set(run.map(\.rows)).count == 1, "a launch mixes piece sizes")
            for piece in run {
                #expect(piece.firstRow == expectedRow && piece.rows <= limit)
                // The piece's last row is at position context - 1 of its sequence.
                let rowsBefore = lengths[..<piece.sequence].reduce(0, +)
                #expect(piece.context == starts[piece.sequence] + piece.firstRow - rowsBefore + piece.rows)
                expectedRow += piece.rows
            }
        }
        #expect(expectedRow == lengths.reduce(0, +))
    }

    @Test func promptChunksAreFreshMultiRowChunks() {
        // Chunks: a 7-row prompt, a continuing row, a fresh single token (decode path), two adjacent prompts
        // (packed: one run), an empty chunk, a continuing chunk, and a last prompt.
        let lengths = [7, 1, 1, 5, 70, 0, 2, 3], starts = [0, 7, 0, 0, 0, 4, 1, 0]
        #expect(DeviceDecodeStep.promptRanges(lengths: lengths, starts: starts) == [0..<7, 9..<84, 86..<89])
        #expect(DeviceDecodeStep.promptRanges(lengths: [1, 1], starts: [0, 3]).isEmpty)
    }

    @Test(arguments: [1, 3, 32])
    func skippingPromptsCoversExactlyTheOtherRows(limit: Int) {
        let lengths = [7, 1, 1, 5, 70, 0, 2, 3], starts = [0, 7, 0, 0, 0, 4, 1, 0]
        let prompts = DeviceDecodeStep.promptRanges(lengths: lengths, starts: starts)
        let plan = DeviceDecodeStep.attentionPlan(lengths: lengths, starts: starts, limit: limit, skippingPrompts: true)
        let covered = plan.flatMap { run in run.flatMap { $0.firstRow..<($0.firstRow + $0.rows) } }
        let expected = (0..<lengths.reduce(0, +)).filter { row in !prompts.contains { $0.contains(row) } }
        #expect(covered == expected)
        // The pieces left are those of the full plan outside the prompts, unchanged.
        let full = DeviceDecodeStep.attentionPlan(lengths: lengths, starts: starts, limit: limit).flatMap { $0 }
        #expect(plan.flatMap { $0 } == full.filter { piece in !prompts.contains { $0.contains(piece.firstRow) } })
    }

    @Test func equalPromptsMakeABatch() {
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [5, 5, 5], starts: [0, 0, 0]) == 3)
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [4096], starts: [0]) == 1)
        // Unequal lengths, a continuing chunk, single tokens, or no chunk: not a [B, S] prefill.
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [5, 4], starts: [0, 0]) == nil)
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [5, 5], starts: [0, 3]) == nil)
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [1, 1], starts: [0, 0]) == nil)
        #expect(DeviceDecodeStep.equalPromptBatch(lengths: [], starts: []) == nil)
    }
}
