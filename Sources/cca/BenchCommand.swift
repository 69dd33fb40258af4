import ArgumentParser
import CCA

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks; each prints its table with the anchor measured in the same run.",
        subcommands: [CPUBench.self, DecodeBench.self, TrainBench.self, PrefillBench.self, BackwardBench.self, QualityBench.self,
                      ZayaBench.self])
}

/// The CPU figures of BENCHMARKS.md: a CCA layer against the MHA layer of the same width, and the
/// matrix-product rate against this machine's measured FMA peak.
struct CPUBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu",
        abstract: "CPU forward time of a CCA layer and of the MHA layer of the same E, and the matrix-product rate vs peak.")

    @Option(help: "Model width E.") var hidden: Int = 1024
    @Option(help: "Latent head dimension d.") var headDim: Int = 128
    @Option(help: "CCA heads (Hq = Hkv).") var heads: Int = 2
    @Option(name: .customLong("seq"), help: "Sequence length S.") var length: Int = 2048
    @Option(help: "Timed repeats (median reported).") var repeats: Int = 5
    @Flag(help: "Time the two layers only, not the matrix-product rate (scripts/bench_cpu.sh alternates this with PyTorch).")
    var layersOnly = false

    var ccaConfig: CCAConfig { CCAConfig(hiddenSize: hidden, queryHeads: heads, keyValueHeads: heads, headDim: headDim) }

    func validate() throws {
        try validating {
            try ccaConfig.validate()
            try ComparisonShapes(hiddenSize: hidden, headDim: headDim).validate()
        }
        guard (1...65536).contains(length) else { throw ValidationError("--seq must be from 1 to 65536, got \(length)") }
        guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be from 1 to 1000, got \(repeats)") }
    }

    func run() throws {
        print("CPU: \(coreCount) cores, kernels \(CPUKernelVariant.selected.rawValue) (runs: "
              + "\(CPUKernelVariant.supported.map(\.rawValue).joined(separator: ", "))), matrix products by \(MatrixMultiply.backendName)")
        let progress = ProgressReporter("bench cpu", total: layersOnly ? 2 : 4, unit: "parts")
        let x = Tensor<Float>(randomNormal: [1, length, hidden], seed: 1)
        let cca = try CCA<Float>(config: ccaConfig, seed: 2)
        let mha = try GQA<Float>(config: .mha(hiddenSize: hidden, heads: hidden / headDim), seed: 3)
        progress.update(done: 0, status: "CCA forward")
        let ccaSeconds = try medianSeconds(repeats: repeats) { _ = try cca.forward(x) }
        progress.update(done: 1, status: "MHA forward")
        let mhaSeconds = try medianSeconds(repeats: repeats) { _ = try mha.forward(x) }
        let ccaFLOPs = cca.config.cost.forwardFLOPs(length: length), mhaFLOPs = mha.config.cost.forwardFLOPs(length: length)
        func layerTable() {
            printTable(["layer (B=1, S=\(length), E=\(hidden), float32)", "forward", "GFLOP/s", "vs MHA"], [
                ["MHA (\(hidden / headDim) heads of \(headDim))", format(mhaSeconds * 1000) + " ms", format(mhaFLOPs / mhaSeconds / 1e9), "1.00x"],
                ["CCA (Hq=Hkv=\(heads), d=\(headDim), C=\(hidden / (heads * headDim)))", format(ccaSeconds * 1000) + " ms",
                 format(ccaFLOPs / ccaSeconds / 1e9), format(mhaSeconds / ccaSeconds) + "x"],
            ])
        }
        guard !layersOnly else {
            progress.finish()
            return layerTable()
        }
        progress.update(done: 2, status: "FMA peak")
        let peak = PeakRate.measureGFLOPS()
        progress.update(done: 3, status: "matrix product")
        let n = 2048
        let a = Tensor<Float>(randomNormal: [n, n], seed: 4), b = Tensor<Float>(randomNormal: [n, n], seed: 5)
        var c = Tensor<Float>(zeros: [n, n])
        let seconds = medianSeconds(repeats: repeats) {
            a.storage.withUnsafeBufferPointer { pa in b.storage.withUnsafeBufferPointer { pb in c.storage.withUnsafeMutableBufferPointer { pc in
                MatrixMultiply.gemm(transposeB: true, m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n,
                                    c: pc.baseAddress!, ldc: n)
            }}}
        }
        let rate = Double(2 * n * n * n) / seconds / 1e9
        progress.finish()
        layerTable()
        print("")
        printTable(["matrix product", "GFLOP/s", "of peak"], [
            ["\(n)×\(n)×\(n) float32 (\(MatrixMultiply.backendName))", format(rate), format(100 * rate / peak) + "%"],
            ["FMA peak, \(CPUKernelVariant.selected.rawValue) registers, \(coreCount) cores (measured)", format(peak), "100%"],
        ])
    }
}
