/// Attention of a few new query rows per sequence against a paged KV cache on the GPU
/// (`decode_attention.cu`): what ``Attention`` computes for the last rows of each sequence, reading the
/// earlier keys and values from the cache's pages.
enum DecodeAttention {
    /// Tokens per cache page (`PAGE` in the kernel).
    static let pageTokens = 64

    /// `out` `[B, queryRows, Hq, dv]` for `q` `[B, queryRows, Hq, dk]`: sequence `b` holds `contextLengths[b]`
    /// tokens in the pages `pageTable[b]` (the new rows' keys and values already written), and new row `i`
    /// sees the keys up to its own position. The context is split so that the grid fills the GPU.
    /// - Parameters:
    ///   - pageTable: `[B, maxPages]` int32 on the device; contextLengths: `[B]` int32 on the device.
    ///   - longestContext: the largest of the context lengths (sizes the splits).
    static func forward(q: DeviceTensor, keyCache: DeviceTensor, valueCache: DeviceTensor, pageTable: DeviceBuffer,
                        maxPages: Int, contextLengths: DeviceBuffer, longestContext: Int, heads: Attention.Heads,
                        context: CUDAContext) throws -> DeviceTensor {
        let out = try context.empty([q.shape[0], q.shape[1], heads.queryHeads, heads.valueDim], q.precision)
        try forward(q: q, keyCache: keyCache, valueCache: valueCache, pageTable: pageTable, maxPages: maxPages,
                    contextLengths: contextLengths, longestContext: longestContext, heads: heads, into: out, context: context)
        return out
    }

    /// ``forward(q:keyCache:valueCache:pageTable:maxPages:contextLengths:longestContext:heads:context:)``
    /// into `out` `[B, queryRows, Hq, dv]` (a view into a larger tensor, for the pieces of a decode step).
    /// With `heads.window` set, new row `i` of sequence `b` (position `p`) sees only the keys from
    /// `max(0, p - window + 1)` on, as ``Attention`` does.
    static func forward(q: DeviceTensor, keyCache: DeviceTensor, valueCache: DeviceTensor, pageTable: DeviceBuffer,
                        maxPages: Int, contextLengths: DeviceBuffer, longestContext: Int, heads: Attention.Heads,
                        into out: DeviceTensor, context: CUDAContext) throws {
        let (batch, queryRows) = (q.shape[0], q.shape[1])
        guard let plan = Plan(heads: heads, queryRows: queryRows, precision: q.precision), heads.causal,
              heads.window.map({ $0 > 0 }) ?? true else {
            throw CUDAError.unsupported("decode attention with head dims \(heads.keyDim)/\(heads.valueDim) (multiples of 8, at most 256), "
                                        + "causal \(heads.causal), window \(heads.window.map(String.init) ?? "none")")
        }
        precondition(out.shape == [batch, queryRows, heads.queryHeads, heads.valueDim] && out.precision == q.precision,
                     "decode attention output \(out.shape) for q \(q.shape)")
        guard batch > 0, longestContext > 0 else { return }
        // The keys one sequence's rows see at most: the window and the new rows, plus the page the first lies in.
        let span = heads.window.map { min(longestContext, $0 + queryRows - 1 + pageTokens - 1) } ?? longestContext
        let (splits, splitTokens) = plan.splits(pages: (span + pageTokens - 1) / pageTokens,
                                                blocksPerSplit: batch * heads.keyValueHeads * plan.rowBlocks,
                                                multiprocessors: context.multiprocessorCount)
        let partialRows = batch * queryRows * heads.queryHeads * splits
        let partialOut = try context.empty([partialRows, heads.valueDim], .float32)
        let partialMax = try context.empty([partialRows], .float32), partialSum = try context.empty([partialRows], .float32)
        let window = Int32(heads.window ?? 0)
        let partial = try context.kernel("decode_attention_partial", in: plan.partialSource, precision: q.precision,
                                         defines: plan.partialDefines)
        try context.launch(partial, grid: (splits, heads.keyValueHeads * plan.rowBlocks, batch), threads: Plan.threads,
                           sharedBytes: plan.partialSharedBytes,
                           [q.address, keyCache.address, valueCache.address, pageTable.address, contextLengths.address,
                            partialOut.address, partialMax.address, partialSum.address, Int32(heads.queryHeads),
                            Int32(heads.keyValueHeads), Int32(queryRows), Int32(maxPages), Int32(splitTokens), window,
                            Float(heads.scale) * Float(1.4426950408889634)])
        let combine = try context.kernel("decode_attention_combine", in: .decodeAttention, precision: q.precision,
                                         defines: plan.defines)
        try context.launch(combine, grid: (batch * queryRows, heads.queryHeads, 1), threads: Plan.combineThreads,
                           [partialOut.address, partialMax.address, partialSum.address, contextLengths.address, out.address,
                            UInt64(0), Int32(queryRows), Int32(splits), Int32(splitTokens), window])
    }

    /// How one launch of decode attention is built and cut. Its partial kernel runs on the tensor cores
    /// (`decode_attention_mma.cu`) for bf16 caches with several packed rows per KV head and head dims that are
    /// multiples of 16, and streams through registers (`decode_attention.cu`) otherwise (one packed row, as
    /// MHA has, is bound by the bytes read either way; float32 keeps exact float products). The combine and the
    /// cache write are always `decode_attention.cu`'s.
    struct Plan: Equatable {
        static let threads = 128, combineThreads = 256, maxSplits = 1024
        /// The splits each combine thread loads (COMBINE_SPLITS), so that the combine holds every split's factor.
        static let combineSplitsPerThread = (maxSplits + combineThreads - 1) / combineThreads
        /// Which partial kernel runs, with its own constant: the streaming one's keys per lane group per step
        /// (TILE), or the tensor-core one's chunks of 16 keys a warp holds in shared memory (STAGES).
        enum Build: Equatable {
            case streaming(tile: Int)
            case tensorCores(stages: Int)
        }

        let build: Build
        /// Lanes reading one key in the streaming kernel and the cache write (LANES), packed rows per block (ROWS),
        /// and the blocks a multiprocessor holds (the registers are capped for it in the streaming build, MIN_BLOCKS).
        let lanes: Int, rows: Int, blocksPerMultiprocessor: Int
        let keyDim: Int, valueDim: Int
        /// Blocks per KV head: the packed rows (`group · queryRows`) in blocks of `rows` (16 on the tensor cores).
        let rowBlocks: Int

        static let tensorCoreRows = 16, tensorCoreWarps = 4, tensorCoreChunk = 16
        /// Shared memory a multiprocessor gives its blocks (H100 and H200: 228 KiB, 1 KiB of it per block reserved).
        static let sharedBytesPerMultiprocessor = 228 * 1024, reservedSharedBytesPerBlock = 1024
        /// The tensor-core build's stages fill at most this, so that two blocks share a multiprocessor at d = 128.
        static let tensorCoreStageBudget = 110 * 1024

        /// nil when the head dims are not multiples of 8 or exceed 256.
        init?(heads: Attention.Heads, queryRows: Int, precision: CUDAPrecision) {
            let (keyDim, valueDim) = (heads.keyDim, heads.valueDim)
            guard keyDim > 0, valueDim > 0, keyDim <= 256, valueDim <= 256, keyDim % 8 == 0, valueDim % 8 == 0,
                  heads.keyValueHeads > 0, heads.queryHeads % heads.keyValueHeads == 0, queryRows > 0 else { return nil }
            (self.keyDim, self.valueDim) = (keyDim, valueDim)
            // 16-byte words (8 channels) per lane, coalesced: as many lanes per key as both dims allow, up to 16.
            lanes = [16, 8, 4, 2, 1].first { keyDim % (8 * $0) == 0 && valueDim % (8 * $0) == 0 }!
            let packed = heads.group * queryRows
            if precision == .bfloat16, packed > 1, keyDim % 16 == 0, valueDim % 16 == 0 {
                let stageBytes = Self.stageBytes(keyDim: keyDim, valueDim: valueDim)
                let stages = min(4, max(2, Self.tensorCoreStageBudget / stageBytes))
                build = .tensorCores(stages: stages)
                rows = Self.tensorCoreRows
                blocksPerMultiprocessor = max(1, Self.sharedBytesPerMultiprocessor
                                                  / (stages * stageBytes + 2 * Self.reservedSharedBytesPerBlock))
            } else {
                rows = packed == 1 ? 1 : packed == 2 ? 2 : 4
                // Registers: a key's words in flight per lane group, fewer for more rows (each holds a query and an
                // output) and for float32 (two registers per channel pair); ptxas spills past these.
                let wordsPerKey = (keyDim + valueDim) / (8 * lanes) * (precision == .float32 ? 2 : 1)
                let budget = rows <= 2 ? 16 : 8
                let keyGroups = 32 / lanes
                var tile = 1
                while tile * 2 * wordsPerKey <= budget && tile * 2 * keyGroups <= pageTokens && tile < 8 { tile *= 2 }
                build = .streaming(tile: tile)
                // Four packed rows would fit four blocks a multiprocessor at d = 128 (126 registers, no spills), but
                // on the H200 that ran CCGQA's large shapes 7-15% slower than two (B = 32, 16k: 244 against 218 µs).
                blocksPerMultiprocessor = rows <= 2 ? 4 : 2
            }
            rowBlocks = (packed + rows - 1) / rows
        }

        /// The build of `decode_attention.cu` (combine, cache write, and the streaming partial kernel).
        var defines: [String: Int] {
            switch build {
            case .streaming(let tile):
                return ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim, "LANES": lanes, "ROWS": rows, "TILE": tile,
                        "MIN_BLOCKS": blocksPerMultiprocessor, "COMBINE_SPLITS": Self.combineSplitsPerThread]
            case .tensorCores:
                return ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim, "LANES": lanes, "COMBINE_SPLITS": Self.combineSplitsPerThread]
            }
        }

        /// The source, build and dynamic shared memory of the partial kernel.
        var partialSource: KernelSource {
            if case .tensorCores = build { return .decodeAttentionTensorCores }
            return .decodeAttention
        }
        var partialDefines: [String: Int] {
            if case .tensorCores(let stages) = build { return ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim, "STAGES": stages] }
            return defines
        }
        var partialSharedBytes: Int {
            if case .tensorCores(let stages) = build { return stages * Self.stageBytes(keyDim: keyDim, valueDim: valueDim) }
            return 0
        }

        /// One stage of the tensor-core build: a chunk of keys and values for each warp, rows padded by 16 bytes.
        static func stageBytes(keyDim: Int, valueDim: Int) -> Int {
            tensorCoreWarps * tensorCoreChunk * (keyDim + valueDim + 16) * 2
        }

        /// Splits of a context of `pages` pages, for `blocksPerSplit` blocks (sequences, KV heads and row blocks)
        /// per split: about eight blocks per resident block slot, so that the last wave is a small part of the
        /// time. The tensor-core build takes splits of up to 64 pages while two waves remain: each of its blocks
        /// pays a fixed start and end (the first loads' latency, the merge of its warps) that a short split does
        /// not hide (H200, CCGQA: B = 32 at 16k 149 → 142 µs, B = 1 at 128k 51 → 45 µs). Each split is at least
        /// four pages (its partial output is then a small part of what it reads), or else two (each tensor-core
        /// warp then has its two chunks in flight from the start), as long as the grid still fills three
        /// quarters of the slots: one wave of such blocks costs about one load latency, where twice the blocks
        /// of one page each take two; and at most ``maxSplits``.
        func splits(pages: Int, blocksPerSplit: Int, multiprocessors: Int) -> (count: Int, tokens: Int) {
            let slots = multiprocessors * blocksPerMultiprocessor
            func pagesFilling(waves: Int) -> Int { max(1, (pages * blocksPerSplit + waves * slots - 1) / (waves * slots)) }
            var splitPages = pagesFilling(waves: 8)
            if case .tensorCores = build { splitPages = max(splitPages, min(64, pagesFilling(waves: 2))) }
            if let least = [4, 2].first(where: { 4 * blocksPerSplit * ((pages + $0 - 1) / $0) >= 3 * slots }) {
                splitPages = max(splitPages, least)
            }
            splitPages = max(splitPages, (pages + Self.maxSplits - 1) / Self.maxSplits)
            return ((pages + splitPages - 1) / splitPages, splitPages * pageTokens)
        }
    }

    /// Writes the new rows' keys `[rows, Hkv, dk]` and values `[rows, Hkv, dv]` into the cache pages: row `r`
    /// belongs to sequence `rowSequence[r]` at position `rowPosition[r]` (int32 buffers on the device).
    static func write(keys: DeviceTensor, values: DeviceTensor, rowSequence: DeviceBuffer, rowPosition: DeviceBuffer,
                      pageTable: DeviceBuffer, maxPages: Int, keyCache: DeviceTensor, valueCache: DeviceTensor,
                      heads: Attention.Heads, context: CUDAContext) throws {
        let rows = keys.shape[0]
        guard rows > 0 else { return }
        guard let plan = Plan(heads: heads, queryRows: 1, precision: keys.precision) else {
            throw CUDAError.unsupported("a decode cache with head dims \(heads.keyDim)/\(heads.valueDim) (multiples of 8, at most 256)")
        }
        let kernel = try context.kernel("paged_cache_write", in: .decodeAttention, precision: keys.precision, defines: plan.defines)
        let total = rows * heads.keyValueHeads * (heads.keyDim + heads.valueDim)
        try context.launch(kernel, grid: (min((total + 255) / 256, 8 * context.multiprocessorCount), 1, 1), threads: 256,
                           [keys.address, values.address, rowSequence.address, rowPosition.address, pageTable.address,
                            keyCache.address, valueCache.address, Int32(rows), Int32(heads.keyValueHeads), Int32(maxPages)])
    }
}
