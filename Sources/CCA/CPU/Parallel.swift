import CCAKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body(i)` for every `i` in `0..<count`, spread over all cores when `count > 1`.
///
/// The iterations must be independent. Use coarse iterations (a row block, a head): each one is a task.
@inline(__always)
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    if count == 1 {
        body(0)
    } else if count > 1 {
        // The iterations touch disjoint memory by contract; the box only silences the Sendable check
        // that Dispatch puts on a closure it never lets escape.
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { box.value($0) }
        }
    }
}

/// Runs `body(next)` on one worker per core (fewer when there are fewer tasks); the workers share the tasks
/// `0..<count`, each calling `next()` for the next index until it returns nil.
///
/// The tasks go out in index order, one at a time, to whichever worker is free: order them longest
/// first and uneven tasks even out, also when another process slows one core. State a task needs (a
/// workspace) is made once per worker, in `body`, around its loop.
public func parallelWorkers(tasks count: Int, _ body: (_ next: () -> Int?) -> Void) {
    guard count > 0 else { return }
    let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    counter.initialize(to: 0)
    defer { counter.deallocate() }
    let next = { () -> Int? in
        let task = cca_task_counter_next(counter)
        return task < count ? task : nil
    }
    parallelFor(min(count, coreCount)) { _ in body(next) }
}

/// Runs `body(range)` over contiguous ranges that cover `0..<count`: one range when the work is small
/// (`count · costPerItem` under about 64K operations, where a task would cost more than it saves),
/// else four per core (ranges of sizes within one of each other).
public func parallelRanges(_ count: Int, costPerItem: Int, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let (work, overflow) = count.multipliedReportingOverflow(by: max(1, costPerItem))
    let parts = !overflow && work < 1 << 16 ? 1 : min(count, 4 * coreCount)
    parallelFor(parts) { part in body((part * count / parts)..<((part + 1) * count / parts)) }
}

/// The number of cores the process may use.
public let coreCount: Int = max(1, sysconfCoreCount())

private func sysconfCoreCount() -> Int {
    #if canImport(Glibc) || canImport(Darwin)
    return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #else
    return 1
    #endif
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
