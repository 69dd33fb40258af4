/// Measures the CPU's fused multiply-add rate with the same vector width the matrix kernel uses, so
/// matrix-product speed can be reported as a fraction of what this machine can actually do.
public enum PeakRate {
    /// GFLOP/s of independent FMA chains on all cores, run for about `seconds`.
    public static func measureGFLOPS(seconds: Double = 0.3) -> Double {
        let iterations = 2_000_000
        func chain() -> Float {
            var a0 = SIMD8<Float>(repeating: 1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0
            let m = SIMD8<Float>(repeating: 0.999_999), c = SIMD8<Float>(repeating: 1e-7)
            for _ in 0..<iterations {
                a0.addProduct(a0, m); a1.addProduct(a1, m); a2.addProduct(a2, m); a3.addProduct(a3, m); a4.addProduct(a4, m)
                a5.addProduct(a5, m); a6.addProduct(a6, m); a7.addProduct(a7, m); a8.addProduct(a8, m); a9.addProduct(a9, m)
                a0 += c
            }
            return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).sum()
        }
        var best = 0.0
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        repeat {
            let start = clock.now
            parallelFor(coreCount) { _ in blackHole(chain()) }
            let elapsed = (clock.now - start).seconds
            best = max(best, Double(coreCount * iterations * 10 * 8 * 2) / elapsed / 1e9)
        } while clock.now < deadline
        return best
    }
}

@inline(never) func blackHole<T>(_ value: T) { _ = value }

extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
