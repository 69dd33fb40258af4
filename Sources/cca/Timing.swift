import CCA

/// Median wall time in seconds of `repeats` runs of `body`, after one warm-up run.
func medianSeconds(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let start = clock.now
        try body()
        times.append((clock.now - start).seconds)
    }
    return times.sorted()[times.count / 2]
}
