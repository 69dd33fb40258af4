@testable import CCA
import Testing

/// The CPU path's parallel loops hand out every task or row exactly once.
@Suite struct ParallelTests {
    @Test(arguments: [1, 2, 3, 64, 1000])
    func workersTakeEveryTaskOnce(_ count: Int) {
        let taken = UnsafeMutablePointer<Int>.allocate(capacity: count)
        taken.initialize(repeating: 0, count: count)
        defer { taken.deallocate() }
        parallelWorkers(tasks: count) { next in
            while let task = next() { taken[task] += 1 }
        }
        #expect((0..<count).allSatisfy { taken[$0] == 1 })
    }

    /// Small work runs as one range; large work splits (it must, for these tests to reach the split paths).
    @Test(arguments: [(1, 1), (5, 1), (100, 1 << 16), (1001, 1 << 10), (7, 1 << 20)])
    func rangesCoverEveryRowOnce(count: Int, costPerItem: Int) {
        let covered = UnsafeMutablePointer<Int>.allocate(capacity: count)
        covered.initialize(repeating: 0, count: count)
        defer { covered.deallocate() }
        let ranges = Locked<[Range<Int>]>([])
        parallelRanges(count, costPerItem: costPerItem) { range in
            ranges.withLock { $0.append(range) }
            for row in range { covered[row] += 1 }
        }
        #expect((0..<count).allSatisfy { covered[$0] == 1 })
        let parts = ranges.withLock { $0.count }
        #expect(count * costPerItem < 1 << 16 ? parts == 1 : parts == min(count, 4 * coreCount))
    }
}
