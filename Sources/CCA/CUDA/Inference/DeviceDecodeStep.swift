/// One decode step's new rows laid out for the kernels: the chunks of the step's sequences one after another
/// (`R` rows), each row's sequence, state slot, position and index within its chunk, and the sequences' page
/// tables, as int32 buffers on the device. Built once per step and read by every layer.
struct DeviceDecodeStep {
    /// One launch of the decode attention: `pieces` consecutive pieces of `rowsPerPiece` rows each, from row
    /// `firstRow` on, piece `p` attending its sequence's keys up to its last row.
    struct AttentionRun {
        let firstRow: Int, rowsPerPiece: Int, pieces: Int
        let pageTable: DeviceBuffer, contextLengths: DeviceBuffer
        let longestContext: Int
    }

    /// The sequences of the step, in row order: their first position (tokens already cached) and chunk length.
    let starts: [Int], lengths: [Int]
    let pageTables: [[Int32]]
    let maxPages: Int
    let rows: Int
    let rowSequence: DeviceBuffer, rowState: DeviceBuffer, rowPosition: DeviceBuffer, rowOffset: DeviceBuffer
    let pageTable: DeviceBuffer
    /// Per sequence: its state slot, the row of its chunk's last token, and its chunk length.
    let sequenceState: DeviceBuffer, sequenceLastRow: DeviceBuffer, sequenceRows: DeviceBuffer
    let lastRows: [Int]
    private var runsByPlan: [RunsKey: [AttentionRun]] = [:]
    private struct RunsKey: Hashable { let limit: Int, skippingPrompts: Bool }

    // MARK: prompt chunks, which start a sequence with more than one row and attend only each other.
    /// Consecutive prompt chunks' rows: `rows` rows from step row `firstRow` on, and each row's position in its
    /// own chunk (int32 on the device), as the flash attention kernels read packed documents.
    struct PromptRun {
        let firstRow: Int, rows: Int
        let positions: DeviceBuffer
    }
    /// Empty for a step of continuing sequences and single tokens (so such a step uploads nothing more).
    let promptRuns: [PromptRun]

    /// Whether a chunk is a fresh prompt of several rows, which ``attend(q:cache:heads:prompt:context:)`` may
    /// run through the flash attention kernels on its own keys instead of the decode kernel.
    static func isPrompt(start: Int, length: Int) -> Bool { start == 0 && length > 1 }

    /// The number of chunks when every chunk is a prompt and all have one length: the rows are then a `[B, S]`
    /// batch of fresh sequences, which a layer may run as a prefill. Nil otherwise.
    var equalPromptBatch: Int? { Self.equalPromptBatch(lengths: lengths, starts: starts) }

    static func equalPromptBatch(lengths: [Int], starts: [Int]) -> Int? {
        guard let length = lengths.first, lengths.allSatisfy({ $0 == length }),
              zip(starts, lengths).allSatisfy({ isPrompt(start: $0, length: $1) }) else { return nil }
        return lengths.count
    }

    /// Whether a chunk has several rows (a prompt, or a chunk of `cca logits --chunks`): such a step is not
    /// captured in a CUDA graph as single-token decode steps are, so its layers may read from the device
    /// (``MixtureOfExperts``' group sizes) and size launches by what they read.
    var allowsHostReads: Bool { rows > lengths.count }

    /// The row ranges of consecutive prompt chunks of chunks of `lengths` starting at `starts`.
    static func promptRanges(lengths: [Int], starts: [Int]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var row = 0
        for (length, start) in zip(lengths, starts) {
            if isPrompt(start: start, length: length) {
                if let last = ranges.last, last.upperBound == row { ranges[ranges.count - 1] = last.lowerBound..<(row + length) }
                else { ranges.append(row..<(row + length)) }
            }
            row += length
        }
        return ranges
    }

    /// - Parameters:
    ///   - sequences: per sequence of the step, its state slot, tokens already cached, chunk length and pages.
    init(sequences: [(state: Int, start: Int, length: Int, pages: [Int32])], context: CUDAContext) throws {
        starts = sequences.map(\.start)
        lengths = sequences.map(\.length)
        let maxPages = max(1, sequences.map(\.pages.count).max() ?? 1)
        self.maxPages = maxPages
        pageTables = sequences.map { $0.pages + [Int32](repeating: 0, count: maxPages - $0.pages.count) }
        var rowSequence: [Int32] = [], rowState: [Int32] = [], rowPosition: [Int32] = [], rowOffset: [Int32] = []
        var lastRows: [Int] = []
        for (index, sequence) in sequences.enumerated() {
            for offset in 0..<sequence.length {
                rowSequence.append(Int32(index))
                rowState.append(Int32(sequence.state))
                rowPosition.append(Int32(sequence.start + offset))
                rowOffset.append(Int32(offset))
            }
            lastRows.append(rowSequence.count - 1)
        }
        rows = rowSequence.count
        self.lastRows = lastRows
        (self.rowSequence, self.rowState) = (try context.upload(rowSequence), try context.upload(rowState))
        (self.rowPosition, self.rowOffset) = (try context.upload(rowPosition), try context.upload(rowOffset))
        pageTable = try context.upload(pageTables.flatMap { $0 })
        sequenceState = try context.upload(sequences.map { Int32($0.state) })
        sequenceLastRow = try context.upload(lastRows.map(Int32.init))
        sequenceRows = try context.upload(sequences.map { Int32($0.length) })
        promptRuns = try Self.promptRanges(lengths: lengths, starts: starts).map { range in
            PromptRun(firstRow: range.lowerBound, rows: range.count, positions: try context.upload(Array(rowPosition[range])))
        }
    }

    /// A piece of a chunk: `rows` rows from step row `firstRow` on, of step sequence `sequence`, whose keys up
    /// to position `context - 1` it attends.
    struct Piece: Equatable {
        let firstRow: Int, rows: Int, sequence: Int, context: Int
    }

    /// The launches covering every row of chunks of `lengths` that start at positions `starts`, when one
    /// launch takes at most `limit` rows per sequence (the decode kernel packs `group · rows` query rows per KV
    /// head, at most 64): each chunk is cut into pieces of `limit` rows and a remainder, and neighbouring
    /// pieces of equal size share a launch, so a step of single tokens is one launch. With `skippingPrompts`
    /// the prompt chunks (``isPrompt(start:length:)``) are left out.
    static func attentionPlan(lengths: [Int], starts: [Int], limit: Int, skippingPrompts: Bool = false) -> [[Piece]] {
        var pieces: [Piece] = []
        var row = 0
        for (sequence, length) in lengths.enumerated() {
            let skipped = skippingPrompts && isPrompt(start: starts[sequence], length: length)
            for done in stride(from: 0, to: skipped ? 0 : length, by: limit) {
                let size = min(limit, length - done)
                pieces.append(Piece(firstRow: row + done, rows: size, sequence: sequence, context: starts[sequence] + done + size))
            }
            row += length
        }
        var runs: [[Piece]] = []
        for piece in pieces {
            if let last = runs.last?.last, last.rows == piece.rows { runs[runs.count - 1].append(piece) } else { runs.append([piece]) }
        }
        return runs
    }

    /// ``attentionPlan(lengths:starts:limit:skippingPrompts:)`` for this step, with each launch's page table and
    /// context lengths on the device (made once per plan, for all layers).
    mutating func attentionRuns(limit: Int, skippingPrompts: Bool = false, context: CUDAContext) throws -> [AttentionRun] {
        let key = RunsKey(limit: limit, skippingPrompts: skippingPrompts)
        if let runs = runsByPlan[key] { return runs }
        let runs = try Self.attentionPlan(lengths: lengths, starts: starts, limit: limit, skippingPrompts: skippingPrompts).map { run in
            AttentionRun(firstRow: run[0].firstRow, rowsPerPiece: run[0].rows, pieces: run.count,
                         pageTable: try context.upload(run.flatMap { pageTables[$0.sequence] }),
                         contextLengths: try context.upload(run.map { Int32($0.context) }),
                         longestContext: run.map(\.context).max()!)
        }
        runsByPlan[key] = runs
        return runs
    }

    /// `out` `[R, Hq, dv]` of `q` `[R, Hq, dk]` against the layer's paged cache, the new rows' keys and values
    /// already written. With `prompt`, the step's keys `[R, Hkv, dk]` and values `[R, Hkv, dv]` (the rows of
    /// prompt chunks at least), each run of prompt chunks attends its own keys through the flash attention
    /// kernels as packed documents, which reads each key once per block of query rows rather than once per
    /// decode piece; a windowed layer (which those kernels do not take) keeps the decode kernel throughout.
    mutating func attend(q: DeviceTensor, cache: DeviceDecodeCache.Layer, heads: Attention.Heads,
                         prompt: (keys: DeviceTensor, values: DeviceTensor)? = nil, context: CUDAContext) throws -> DeviceTensor {
        let out = try context.empty([rows, heads.queryHeads, heads.valueDim], q.precision)
        let flash = prompt != nil && heads.window == nil && !promptRuns.isEmpty
        if flash, let prompt {
            for run in promptRuns {
                func runRows(_ tensor: DeviceTensor, heads count: Int, width: Int) -> DeviceTensor {
                    tensor.view([1, run.rows, count, width], at: run.firstRow * count * width)
                }
                _ = try Attention.forward(q: runRows(q, heads: heads.queryHeads, width: heads.keyDim),
                                          k: runRows(prompt.keys, heads: heads.keyValueHeads, width: heads.keyDim),
                                          v: runRows(prompt.values, heads: heads.keyValueHeads, width: heads.valueDim),
                                          heads: heads, keyValid: nil, positions: run.positions,
                                          into: runRows(out, heads: heads.queryHeads, width: heads.valueDim), context: context)
            }
        }
        for run in try attentionRuns(limit: max(1, 64 / heads.group), skippingPrompts: flash, context: context) {
            let pieceShape = [run.pieces, run.rowsPerPiece, heads.queryHeads]
            try DecodeAttention.forward(
                q: q.view(pieceShape + [heads.keyDim], at: run.firstRow * heads.queryHeads * heads.keyDim),
                keyCache: cache.keys, valueCache: cache.values, pageTable: run.pageTable, maxPages: maxPages,
                contextLengths: run.contextLengths, longestContext: run.longestContext, heads: heads,
                into: out.view(pieceShape + [heads.valueDim], at: run.firstRow * heads.queryHeads * heads.valueDim),
                context: context)
        }
        return out
    }
}
