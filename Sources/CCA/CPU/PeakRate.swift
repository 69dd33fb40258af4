import CCAKernels

/// Measures the CPU's fused multiply-add rate with the registers the matrix kernel uses, so matrix-product
/// speed can be reported as a fraction of what this machine can actually do.
public enum PeakRate {
    /// GFLOP/s of independent FMA chains in `kernels`' widest registers on all cores, run for about `seconds`.
    public static func measureGFLOPS(seconds: Double = 0.3, kernels: CPUKernelVariant = .selected) -> Double {
        let iterations = 2_000_000
        let flopsPerStep = Int(cca_fma_chain_flops(kernels.kernel))
        var best = 0.0
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        repeat {
            let start = clock.now
            parallelFor(coreCount) { _ in blackHole(cca_fma_chains(kernels.kernel, iterations)) }
            let elapsed = (clock.now - start).seconds
            best = max(best, Double(coreCount * iterations * flopsPerStep) / elapsed / 1e9)
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
