import ArgumentParser
import CCA

/// `cca bench backward --device cuda`: layers forward + backward and the attention backward against the
/// PyTorch anchors.
struct BackwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "GPU forward + backward latency of the MHA, CCA and CCGQA layers and the attention backward, with the PyTorch anchors.",
        discussion: """
        The anchors come from `scripts/backward_anchors.py --csv FILE` run in the same device call \
        (`scripts/bench_backward.sh` runs both): the PyTorch MHA layer (cuDNN SDPA) forward + backward, eager and \
        under CUDA-graph capture, the transformers ZayaAttention layer for CCA and CCGQA, and cuDNN SDPA's \
        backward alone on the latent shapes.
        """)

    @Option(help: "Device (only cuda).") var device: String = "cuda"
    @Option(help: "Sequence lengths.") var seqs: [Int] = [1024, 2048, 4096, 8192, 16384]
    @Option(help: "Anchor timings (CSV from scripts/backward_anchors.py).") var anchors: String?
    @Option(help: "Write every timing (ours and anchors) here as CSV.") var csv: String?
    @Option(help: "Write the latency-against-S plot here as SVG.") var svg: String?
    @Option(help: "Timed runs per measurement (median reported).") var repeats: Int = 20

    func run() throws {
        guard device == "cuda" else { throw ValidationError("backward timings are for --device cuda") }
        let ours = try BackwardBenchmark.run(lengths: seqs, repetitions: repeats)
        let anchorRows = try anchors.map { try PrefillBenchmark.anchors(csv: String(decoding: readFile($0), as: UTF8.self), source: $0) } ?? []
        func time(_ method: String, _ length: Int, from rows: [PrefillBenchmark.Measurement]) -> PrefillBenchmark.Measurement? {
            rows.first { $0.method == method && $0.length == length }
        }
        func ms(_ m: PrefillBenchmark.Measurement?) -> String { m.map { NumberFormatting.fixed($0.milliseconds, 3) } ?? "-" }
        func ratio(_ slow: PrefillBenchmark.Measurement?, _ fast: PrefillBenchmark.Measurement?) -> String {
            guard let slow, let fast else { return "-" }
            return NumberFormatting.fixed(slow.milliseconds / fast.milliseconds, 2) + "x"
        }
        print("\nWhole layer forward + backward, causal, bf16, E=2048, d=128, B=1 (ms; speed-ups = anchor time / ours)")
        printTable(["S", "MHA ours", "torch MHA", "torch MHA graph", "CCA ours", "ZAYA CCA", "CCGQA ours", "ZAYA CCGQA",
                    "CCA vs torch MHA", "CCA vs ZAYA", "CCGQA vs ZAYA"], seqs.map { s in
            let (cca, ccgqa) = (time("cca", s, from: ours), time("ccgqa", s, from: ours))
            let torch = time("torch-mha", s, from: anchorRows)
            return ["\(s)", ms(time("mha", s, from: ours)), ms(torch), ms(time("torch-mha-graph", s, from: anchorRows)), ms(cca),
                    ms(time("zaya-cca", s, from: anchorRows)), ms(ccgqa), ms(time("zaya-ccgqa", s, from: anchorRows)),
                    ratio(torch, cca), ratio(time("zaya-cca", s, from: anchorRows), cca),
                    ratio(time("zaya-ccgqa", s, from: anchorRows), ccgqa)]
        })
        print("\nPeak device memory of one layer forward + backward (MiB above its input)")
        printTable(["S", "MHA ours", "torch MHA", "CCA ours", "ZAYA CCA", "CCGQA ours", "ZAYA CCGQA"], seqs.map { s in
            ["\(s)"] + ["peak-mib-mha", "peak-mib-torch-mha", "peak-mib-cca", "peak-mib-zaya-cca", "peak-mib-ccgqa", "peak-mib-zaya-ccgqa"]
                .map { method in ms(time(method, s, from: method.contains("torch") || method.contains("zaya") ? anchorRows : ours)) }
        })
        print("\nAttention backward on the latent shapes (TFLOP/s, counted as 2.5x the causal forward; ratio = ours / cuDNN)")
        printTable(["S", "MHA ours", "MHA cuDNN", "ratio", "CCA ours", "CCA cuDNN", "ratio", "CCGQA ours", "CCGQA cuDNN", "ratio"],
                   seqs.map { s in
            func rate(_ m: PrefillBenchmark.Measurement?) -> String { m?.teraflops.map { NumberFormatting.fixed($0, 0) } ?? "-" }
            return ["\(s)"] + ["mha", "cca", "ccgqa"].flatMap { method -> [String] in
                let (mine, cudnn) = (time("core-" + method, s, from: ours), time("cudnn-backward-" + method, s, from: anchorRows))
                return [rate(mine), rate(cudnn), ratio(cudnn, mine)]
            }
        })
        let output = BenchmarkOutput(ours: ours, anchors: anchorRows)
        if let csv { try output.writeCSV(to: csv) }
        if let svg { try output.writePlot(title: "Forward + backward of one layer (H200, bf16, E=2048, causal)", methods: ["mha", "torch-mha", "torch-mha-graph", "cca", "zaya-cca", "ccgqa", "zaya-ccgqa"], lengths: seqs, to: svg) }
    }
}
