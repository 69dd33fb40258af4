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
