import ArgumentParser
import CCA

/// `cca bench prefill --device cuda`: our layers and attention core against the PyTorch anchors.
struct PrefillBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefill",
        abstract: "GPU prefill latency of the MHA, CCA and CCGQA layers and of the attention core, with the PyTorch anchors.",
        discussion: """
        The anchors come from `scripts/prefill_anchors.py --csv FILE` run in the same device call \
        (`scripts/bench_prefill.sh` runs both): the PyTorch MHA layer (cuDNN SDPA), the transformers \
        ZayaAttention layer for CCA and CCGQA, and cuDNN SDPA alone on the latent shapes.
        """)

    @Option(help: "Device (only cuda: the CPU figures are `cca bench cpu`).") var device: String = "cuda"
    @Option(help: "Sequence lengths.") var seqs: [Int] = [1024, 2048, 4096, 8192, 16384]
    @Option(help: "Anchor timings (CSV from scripts/prefill_anchors.py).") var anchors: String?
    @Option(help: "Write every timing (ours and anchors) here as CSV.") var csv: String?
    @Option(help: "Write the latency-against-S plot here as SVG.") var svg: String?
    @Option(help: "Timed runs per measurement (median reported).") var repeats: Int = 20

    func run() throws {
        guard device == "cuda" else { throw ValidationError("prefill timings are for --device cuda; CPU figures come from `cca bench cpu`") }
        let ours = try PrefillBenchmark.run(lengths: seqs, repetitions: repeats)
        let anchorRows = try anchors.map { try PrefillBenchmark.anchors(csv: String(decoding: readFile($0), as: UTF8.self), source: $0) } ?? []
        func time(_ method: String, _ length: Int, causal: Bool = true, from rows: [PrefillBenchmark.Measurement]) -> PrefillBenchmark.Measurement? {
            rows.first { $0.method == method && $0.length == length && $0.causal == causal }
        }
        func ms(_ m: PrefillBenchmark.Measurement?) -> String { m.map { NumberFormatting.fixed($0.milliseconds, 3) } ?? "-" }
        func ratio(_ slow: PrefillBenchmark.Measurement?, _ fast: PrefillBenchmark.Measurement?) -> String {
            guard let slow, let fast else { return "-" }
            return NumberFormatting.fixed(slow.milliseconds / fast.milliseconds, 2) + "x"
        }
        print("\nWhole layer, causal, bf16, E=2048, d=128, B=1 (ms; speed-ups = anchor time / our time)")
        printTable(["S", "MHA ours", "MHA torch", "CCA ours", "ZAYA CCA", "CCGQA ours", "ZAYA CCGQA",
                    "CCA vs torch MHA", "CCA vs ZAYA", "CCGQA vs ZAYA"], seqs.map { s in
            let (mha, torch) = (time("mha", s, from: ours), time("torch-mha", s, from: anchorRows))
            let (cca, zayaCCA) = (time("cca", s, from: ours), time("zaya-cca", s, from: anchorRows))
            let (ccgqa, zayaCCGQA) = (time("ccgqa", s, from: ours), time("zaya-ccgqa", s, from: anchorRows))
            return ["\(s)", ms(mha), ms(torch), ms(cca), ms(zayaCCA), ms(ccgqa), ms(zayaCCGQA),
                    ratio(torch, cca), ratio(zayaCCA, cca), ratio(zayaCCGQA, ccgqa)]
        })
        print("\nAttention core on the latent shapes (TFLOP/s; ratio = ours / cuDNN throughput; bf16 matrix peak about 800)")
        printTable(["S", "causal", "MHA ours", "CCA ours", "CCA cuDNN", "ratio", "CCGQA ours", "CCGQA cuDNN", "ratio"],
                   seqs.flatMap { s in [true, false].map { causal in
            func rate(_ m: PrefillBenchmark.Measurement?) -> String { m?.teraflops.map { NumberFormatting.fixed($0, 0) } ?? "-" }
            let (cca, cudnnCCA) = (time("core-cca", s, causal: causal, from: ours), time("cudnn-core-cca", s, causal: causal, from: anchorRows))
            let (ccgqa, cudnnCCGQA) = (time("core-ccgqa", s, causal: causal, from: ours),
                                       time("cudnn-core-ccgqa", s, causal: causal, from: anchorRows))
            return ["\(s)", causal ? "yes" : "no", rate(time("core-mha", s, causal: causal, from: ours)), rate(cca), rate(cudnnCCA),
                    ratio(cudnnCCA, cca), rate(ccgqa), rate(cudnnCCGQA), ratio(cudnnCCGQA, ccgqa)]
        } })
        let output = BenchmarkOutput(ours: ours, anchors: anchorRows)
        if let csv { try output.writeCSV(to: csv) }
        if let svg { try output.writePlot(title: "Prefill latency of one layer (H200, bf16, E=2048, causal)", methods: ["mha", "torch-mha", "cca", "zaya-cca", "ccgqa", "zaya-ccgqa"], lengths: seqs, to: svg) }
    }
}
