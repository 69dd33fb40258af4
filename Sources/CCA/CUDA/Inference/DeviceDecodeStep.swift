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
    private var runsByLimit: [Int: [AttentionRun]] = [:]

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
    }

    /// A piece of a chunk: `rows` rows from step row `firstRow` on, of step sequence `sequence`, whose keys up
    /// to position `context - 1` it attends.
    struct Piece: Equatable {
        let firstRow: Int, rows: Int, sequence: Int, context: Int
    }

    /// The launches covering every row of chunks of `lengths` that start at positions `starts`, when one
    /// launch takes at most `limit` rows per sequence (the decode kernel packs `group · rows` query rows per KV
    /// head, at most 64): each chunk is cut into pieces of `limit` rows and a remainder, and neighbouring
    /// pieces of equal size share a launch, so a step of single tokens is one launch.
    static func attentionPlan(lengths: [Int], starts: [Int], limit: Int) -> [[Piece]] {
        var pieces: [Piece] = []
        var row = 0
        for (sequence, length) in lengths.enumerated() {
            for done in stride(from: 0, to: length, by: limit) {
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

    /// ``attentionPlan(lengths:starts:limit:)`` for this step, with each launch's page table and context lengths
    /// on the device (made once per limit, for all layers).
    mutating func attentionRuns(limit: Int, context: CUDAContext) throws -> [AttentionRun] {
        if let runs = runsByLimit[limit] { return runs }
        let runs = try Self.attentionPlan(lengths: lengths, starts: starts, limit: limit).map { run in
            AttentionRun(firstRow: run[0].firstRow, rowsPerPiece: run[0].rows, pieces: run.count,
                         pageTable: try context.upload(run.flatMap { pageTables[$0.sequence] }),
                         contextLengths: try context.upload(run.map { Int32($0.context) }),
                         longestContext: run.map(\.context).max()!)
        }
        runsByLimit[limit] = runs
        return runs
    }

    /// `out` `[R, Hq, dv]` of `q` `[R, Hq, dk]` against the layer's paged cache, the new rows' keys and values
    /// already written.
    mutating func attend(q: DeviceTensor, cache: DeviceDecodeCache.Layer, heads: Attention.Heads,
                         context: CUDAContext) throws -> DeviceTensor {
        let out = try context.empty([rows, heads.queryHeads, heads.valueDim], q.precision)
        for run in try attentionRuns(limit: max(1, 64 / heads.group), context: context) {
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
