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
        let all = ours.map { ($0, "ours") } + anchorRows.map { ($0, "anchor") }
        if let csv {
            let lines = all.map { m, source in
                "\(source),\(m.method),\(m.length),\(m.causal),\(m.milliseconds),\(m.teraflops.map { "\($0)" } ?? "")"
            }
            try writeAtomically(Array((["source,method,seq,causal,ms,tflops"] + lines).joined(separator: "\n").utf8 + [10]), to: csv)
        }
        if let svg {
            let methods = ["mha", "torch-mha", "cca", "zaya-cca", "ccgqa", "zaya-ccgqa"].filter { method in all.contains { $0.0.method == method } }
            let plot = LinePlot(title: "Prefill latency of one layer (H100, bf16, E=2048, causal)",
                                x: .init(label: "sequence length S", logarithmic: true, ticks: seqs.map(Double.init)),
                                y: .init(label: "milliseconds", logarithmic: true),
                                series: methods.enumerated().map { index, method in
                .init(name: method.hasPrefix("torch") || method.hasPrefix("zaya") ? method : "ours " + method,
                      color: LinePlot.colors[index % LinePlot.colors.count],
                      points: all.filter { $0.0.method == method && $0.0.causal }.map { (Double($0.0.length), $0.0.milliseconds) })
            })
            try writeAtomically(Array(plot.svg.utf8), to: svg)
        }
    }
}
