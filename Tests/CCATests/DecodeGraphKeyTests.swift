import Testing
@testable import CCA

/// When the GPU engine may replay a decode step as a CUDA graph (``DeviceDecodeStep/GraphKey``), checked
/// without a GPU: the context size classes the decode attention's splits are sized for, and which steps share
/// a key.
@Suite struct DecodeGraphKeyTests {
    typealias Sequence = (state: Int, start: Int, length: Int, pages: [Int32])

    @Test func contextClassesCoverTheContextInWholePagesAndFewClasses() {
        let page = DecodeAttention.pageTokens
        var previous = 0, classes = Set<Int>()
        for tokens in 1...(1 << 17) {
            let rounded = DeviceDecodeStep.splitContext(tokens)
            let pages = (tokens + page - 1) / page
            #expect(rounded % page == 0 && rounded >= tokens, "\(tokens)")
            // Exact up to 8 pages, then at most a quarter more than the pages the context needs.
            #expect(pages <= 8 ? rounded == pages * page : 4 * rounded <= 5 * pages * page, "\(tokens) -> \(rounded)")
            #expect(rounded >= previous, "classes grow with the context")
            previous = rounded
            classes.insert(rounded)
        }
        // 8 exact classes, then 4 per doubling up to 2048 pages (128k tokens): 8 + 4 * 8.
        #expect(classes.count == 40)
    }

    @Test func onlyStepsOfSingleTokensHaveAKey() {
        let pages: [Int32] = Array(0..<10)
        #expect(DeviceDecodeStep.GraphKey(sequences: []) == nil)
        #expect(DeviceDecodeStep.GraphKey(sequences: [(0, 5, 1, pages), (1, 7, 2, pages)]) == nil)
        #expect(DeviceDecodeStep.GraphKey(sequences: [(0, 0, 3, pages)]) == nil)
        #expect(DeviceDecodeStep.GraphKey(sequences: [(0, 5, 1, pages), (1, 7, 1, pages)]) != nil)
    }

    @Test func stepsShareAKeyWithinAContextClass() throws {
        let pages: [Int32] = Array(0..<10), others: [Int32] = Array(10..<20)
        func key(_ sequences: [Sequence]) throws -> DeviceDecodeStep.GraphKey { try #require(DeviceDecodeStep.GraphKey(sequences: sequences)) }
        // Other positions in the same class, other state slots and other pages: the same launches.
        let base = try key([(0, 520, 1, pages), (1, 3, 1, pages)])
        #expect(try key([(2, 530, 1, others), (0, 100, 1, pages)]) == base)
        // A longest context in the next class, another batch, or wider page tables: other launches.
        #expect(try key([(0, 700, 1, pages), (1, 3, 1, pages)]) != base)
        #expect(try key([(0, 520, 1, pages)]) != base)
        #expect(try key([(0, 520, 1, pages + [20]), (1, 3, 1, pages)]) != base)
        #expect(base == DeviceDecodeStep.GraphKey(sequences: [(5, 575, 1, pages), (6, 0, 1, pages)]))
    }
}
