/// One decode step's new rows laid out for the kernels: the chunks of the step's sequences one after another
/// (`R` rows), their tokens, each row's sequence, state slot, position and index within its chunk, and the
/// sequences' page tables, as int32 arrays on the device. They travel in one upload (``inputs``) and are read
/// by every layer.
///
/// A step of one token per sequence is the same launches every time for the same ``GraphKey``, so
/// ``DeviceDecodeEngine`` replays it as a ``CUDAGraph``: the arrays go into the graph's input buffer (their
/// layout depends on the key alone) and the kernels read them there.
struct DeviceDecodeStep {
    /// One launch of the decode attention: `pieces` consecutive pieces of `rowsPerPiece` rows each, from row
    /// `firstRow` on, piece `p` attending its sequence's keys up to its last row.
    struct AttentionRun {
        let firstRow: Int, rowsPerPiece: Int, pieces: Int
        let pageTable: DeviceBuffer, contextLengths: DeviceBuffer
        /// At least the longest context of the pieces (``splitContext(_:)``): it sizes the context splits.
        let longestContext: Int
    }

    /// What makes two steps of single tokens the same launches: the sequences and the page-table width, and
    /// the longest context rounded as ``splitContext(_:)`` rounds it.
    struct GraphKey: Hashable {
        let sequences: Int, maxPages: Int, splitContext: Int

        /// The key of a step of `sequences` (as ``DeviceDecodeStep/init(sequences:tokens:inputs:context:)``
        /// takes them); nil unless every sequence brings one token.
        init?(sequences: [(state: Int, start: Int, length: Int, pages: [Int32])]) {
            guard !sequences.isEmpty, sequences.allSatisfy({ $0.length == 1 }) else { return nil }
            self.sequences = sequences.count
            maxPages = max(1, sequences.map(\.pages.count).max() ?? 1)
            splitContext = DeviceDecodeStep.splitContext(sequences.map { $0.start + 1 }.max()!)
        }
    }

    /// The sequences of the step, in row order: their first position (tokens already cached) and chunk length.
    let starts: [Int], lengths: [Int]
    let pageTables: [[Int32]]
    let maxPages: Int
    let rows: Int
    /// The one device buffer holding every array below.
    let inputs: DeviceBuffer
    /// int32 `[R]`: the rows' tokens (checked against the vocabulary by the caller; zeros for a layer alone).
    let tokens: DeviceBuffer
    let rowSequence: DeviceBuffer, rowState: DeviceBuffer, rowPosition: DeviceBuffer, rowOffset: DeviceBuffer
    let pageTable: DeviceBuffer
    /// Per sequence: its state slot, the row of its chunk's last token, its chunk length and its context
    /// length after the step.
    let sequenceState: DeviceBuffer, sequenceLastRow: DeviceBuffer, sequenceRows: DeviceBuffer, sequenceEnd: DeviceBuffer
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
    ///   - tokens: the rows' tokens (empty for a layer run alone).
    ///   - inputs: the buffer to upload the arrays into (a graph's: the ``inputs`` of a step of the same
    ///     ``GraphKey``, whose arrays have the same layout); nil: a new one.
    init(sequences: [(state: Int, start: Int, length: Int, pages: [Int32])], tokens: [Int] = [], inputs: DeviceBuffer? = nil,
         context: CUDAContext) throws {
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
        let rows = rowSequence.count
        precondition(tokens.isEmpty || tokens.count == rows, "\(tokens.count) tokens for \(rows) rows")
        self.rows = rows
        let ends = sequences.map { Int32($0.start + $0.length) }
        // One upload: the arrays back to back, in the order of `parts`.
        let parts: [[Int32]] = [tokens.isEmpty ? [Int32](repeating: 0, count: rows) : tokens.map { Int32($0) },
                                rowSequence, rowState, rowPosition, rowOffset, pageTables.flatMap { $0 },
                                sequences.map { Int32($0.state) }, lastRows.map(Int32.init), sequences.map { Int32($0.length) }, ends]
        let inputs = try inputs ?? context.allocator.allocate(4 * parts.reduce(0) { $0 + $1.count })
        try context.upload(parts.flatMap { $0 }, into: inputs)
        self.inputs = inputs
        var offset = 0
        let slices = parts.map { part in
            defer { offset += 4 * part.count }
            return inputs.slice(byteOffset: offset, byteCount: 4 * part.count)
        }
        (self.tokens, self.rowSequence, self.rowState, self.rowPosition, self.rowOffset) = (slices[0], slices[1], slices[2], slices[3], slices[4])
        (pageTable, sequenceState, sequenceLastRow, sequenceRows, sequenceEnd) = (slices[5], slices[6], slices[7], slices[8], slices[9])
        promptRuns = try Self.promptRanges(lengths: lengths, starts: starts).map { range in
            PromptRun(firstRow: range.lowerBound, rows: range.count, positions: try context.upload(Array(rowPosition[range])))
        }
    }

    /// A context of `tokens` rounded up to a size class of whole pages (up to 8 pages exact, above that classes
    /// an eighth of the next power of two wide, so at most 25% more): the decode attention's splits are sized
    /// for it, so that a step's launches, and its graph, stay the same while the sequences grow in a class.
    static func splitContext(_ tokens: Int) -> Int {
        let page = DecodeAttention.pageTokens
        let pages = max(1, (tokens + page - 1) / page)
        let granule = pages <= 8 ? 1 : 1 << (Int.bitWidth - (pages - 1).leadingZeroBitCount - 3)
        return (pages + granule - 1) / granule * granule * page
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
    /// context lengths on the device (made once per plan, for all layers). A plan of one launch with one piece
    /// per sequence (every step of single tokens) reads the step's own page table and context lengths: no upload.
    mutating func attentionRuns(limit: Int, skippingPrompts: Bool = false, context: CUDAContext) throws -> [AttentionRun] {
        let key = RunsKey(limit: limit, skippingPrompts: skippingPrompts)
        if let runs = runsByPlan[key] { return runs }
        let plan = Self.attentionPlan(lengths: lengths, starts: starts, limit: limit, skippingPrompts: skippingPrompts)
        let runs: [AttentionRun]
        if plan.count == 1, plan[0].map(\.sequence) == Array(lengths.indices) {
            runs = [AttentionRun(firstRow: 0, rowsPerPiece: plan[0][0].rows, pieces: lengths.count, pageTable: pageTable,
                                 contextLengths: sequenceEnd, longestContext: Self.splitContext(plan[0].map(\.context).max()!))]
        } else {
            runs = try plan.map { run in
                AttentionRun(firstRow: run[0].firstRow, rowsPerPiece: run[0].rows, pieces: run.count,
                             pageTable: try context.upload(run.flatMap { pageTables[$0.sequence] }),
                             contextLengths: try context.upload(run.map { Int32($0.context) }),
                             longestContext: Self.splitContext(run.map(\.context).max()!))
            }
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
