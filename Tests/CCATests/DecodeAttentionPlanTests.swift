import Testing
@testable import CCA

/// How the GPU decode attention is built and cut (``DecodeAttention/Plan``), checked without a GPU: the
/// splits cover every page of the context, the packed bf16 shapes take the tensor cores within the shared
/// memory a multiprocessor has, and every build the wrapper asks for compiles for Hopper.
@Suite struct DecodeAttentionPlanTests {
    static let shapes: [(queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, queryRows: Int)] = [
        (8, 2, 128, 128, 1), (16, 16, 128, 128, 1), (16, 2, 64, 64, 1), (8, 1, 128, 128, 8), (2, 2, 64, 64, 3),
        (4, 4, 192, 128, 1), (8, 2, 256, 256, 2), (4, 2, 24, 40, 1),
    ]

    static func plan(_ shape: (queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, queryRows: Int),
                     _ precision: CUDAPrecision) -> DecodeAttention.Plan? {
        DecodeAttention.Plan(heads: Attention.Heads(queryHeads: shape.queryHeads, keyValueHeads: shape.keyValueHeads,
                                                    keyDim: shape.keyDim, valueDim: shape.valueDim, scale: 1),
                             queryRows: shape.queryRows, precision: precision)
    }

    @Test func splitsCoverTheContextInWholePages() throws {
        let plan = try #require(Self.plan(Self.shapes[0], .bfloat16))
        for pages in [1, 2, 3, 16, 17, 256, 2048, 5000, 70000] {
            for blocksPerSplit in [1, 2, 16, 64, 512, 4096] {
                let (count, tokens) = plan.splits(pages: pages, blocksPerSplit: blocksPerSplit, multiprocessors: 132)
                let splitPages = tokens / DecodeAttention.pageTokens
                #expect(tokens % DecodeAttention.pageTokens == 0 && splitPages >= 1)
                // Every page in some split, and no split empty.
                #expect(count * splitPages >= pages && (count - 1) * splitPages < pages, "\(pages) pages, \(blocksPerSplit)")
                #expect(count <= DecodeAttention.Plan.maxSplits)
            }
        }
        // B = 1 at 16k (2 KV heads): the grid is filled by splitting finely, not left at 2 blocks: one wave of
        // two-page splits (256 blocks for 264 slots) rather than two waves of one-page splits.
        #expect(plan.splits(pages: 256, blocksPerSplit: 2, multiprocessors: 132) == (128, 128))
        // B = 32 at 1k: four-page splits, one wave. On the tensor cores, B = 32 at 16k and B = 1 at 128k: two
        // waves of splits as long as 32 and 8 pages; B = 32 at 128k: eight blocks per slot (63 pages) would be
        // shorter than 64 pages, and two waves' splits longer, so 64.
        #expect(plan.splits(pages: 16, blocksPerSplit: 64, multiprocessors: 132) == (4, 256))
        #expect(plan.splits(pages: 256, blocksPerSplit: 64, multiprocessors: 132) == (8, 2048))
        #expect(plan.splits(pages: 2048, blocksPerSplit: 2, multiprocessors: 132) == (256, 512))
        #expect(plan.splits(pages: 2048, blocksPerSplit: 64, multiprocessors: 132) == (32, 4096))
        // The streaming build (MHA's one packed row) keeps eight blocks per slot: B = 8 at 16k, 16 KV heads, 528
        // slots: 8 pages, where two waves would take 31.
        let streaming = try #require(Self.plan(Self.shapes[1], .bfloat16))
        #expect(streaming.splits(pages: 256, blocksPerSplit: 128, multiprocessors: 132) == (32, 512))
    }

    @Test func packedRowsAreCutIntoRowBlocks() throws {
        // 8 query heads per KV head and 8 new rows: 64 packed rows, 4 tensor-core blocks of 16 in bf16, 16
        // streaming blocks of 4 in float32.
        let tensorCores = try #require(Self.plan(Self.shapes[3], .bfloat16))
        #expect(tensorCores.rows == 16 && tensorCores.rowBlocks == 4)
        let streaming = try #require(Self.plan(Self.shapes[3], .float32))
        #expect(streaming.rows == 4 && streaming.rowBlocks == 16)
        #expect(Self.plan((8, 2, 12, 128, 1), .bfloat16) == nil)  // a head dim that is no multiple of 8
        #expect(Self.plan((8, 2, 512, 512, 1), .bfloat16) == nil)
    }

    @Test func tensorCoresTakeThePackedBFloat16Shapes() throws {
        func build(_ shape: (queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, queryRows: Int),
                   _ precision: CUDAPrecision) throws -> KernelSource {
            try #require(Self.plan(shape, precision)).partialSource
        }
        #expect(try build((8, 2, 128, 128, 1), .bfloat16) == .decodeAttentionTensorCores)  // CCGQA: 4 packed rows
        #expect(try build((4, 4, 128, 128, 2), .bfloat16) == .decodeAttentionTensorCores)  // MHA chunk rows
        #expect(try build((16, 16, 128, 128, 1), .bfloat16) == .decodeAttention)  // one packed row: MHA decoding
        #expect(try build((8, 2, 128, 128, 1), .float32) == .decodeAttention)  // exact float products
        #expect(try build((4, 2, 24, 40, 1), .bfloat16) == .decodeAttention)  // dims that are no multiple of 16
    }

    @Test func tensorCoreBlocksFitInSharedMemory() throws {
        for shape in Self.shapes {
            let plan = try #require(Self.plan(shape, .bfloat16))
            guard case .tensorCores(let stages) = plan.build else { continue }
            #expect(stages >= 2 && plan.partialSharedBytes <= 227 * 1024, "\(shape)")
            let perBlock = plan.partialSharedBytes + 2 * DecodeAttention.Plan.reservedSharedBytesPerBlock
            #expect(plan.blocksPerMultiprocessor >= 1
                    && plan.blocksPerMultiprocessor * perBlock <= DecodeAttention.Plan.sharedBytesPerMultiprocessor, "\(shape)")
        }
        // CCGQA's d = 128: three stages, two blocks a multiprocessor.
        let ccgqa = try #require(Self.plan(Self.shapes[0], .bfloat16))
        #expect(ccgqa.build == .tensorCores(stages: 3) && ccgqa.blocksPerMultiprocessor == 2)
    }

    @Test(.enabled(if: CUDAKernels.compilerAvailable,
                   "NVRTC not found: `python3 -m pip install nvidia-cuda-nvrtc` or set CCA_NVRTC=/path/to/libnvrtc.so.13"))
    func everyPlanCompilesForHopper() throws {
        // float32 for one shape only: each build takes seconds.
        for (index, shape) in Self.shapes.enumerated() {
            for precision in index == 0 ? CUDAPrecision.allCases : [.bfloat16] {
                let plan = try #require(Self.plan(shape, precision))
                var variants = [KernelVariant(source: .decodeAttention, precision: precision, defines: plan.defines)]
                if plan.partialSource != .decodeAttention {
                    variants.append(KernelVariant(source: plan.partialSource, precision: precision, defines: plan.partialDefines))
                }
                for variant in variants {
                    #expect(try KernelCompiler.cubin(variant, architecture: "sm_90a", diskCache: nil).count > 0, "\(variant)")
                }
            }
        }
    }
}
