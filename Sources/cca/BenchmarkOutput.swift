import CCA

/// What `cca bench prefill` and `cca bench backward` write besides their tables: every timing as CSV and
/// a latency-against-S plot.
struct BenchmarkOutput {
    /// Ours and the anchors, each with its source (`ours` or `anchor`).
    let measurements: [(PrefillBenchmark.Measurement, source: String)]

    init(ours: [PrefillBenchmark.Measurement], anchors: [PrefillBenchmark.Measurement]) {
        measurements = ours.map { ($0, "ours") } + anchors.map { ($0, "anchor") }
    }

    /// Writes `source,method,seq,causal,ms,tflops` rows to `path`, atomically.
    func writeCSV(to path: String) throws {
        let lines = measurements.map { m, source in
            "\(source),\(m.method),\(m.length),\(m.causal),\(m.milliseconds),\(m.teraflops.map { "\($0)" } ?? "")"
        }
        try writeAtomically(Array((["source,method,seq,causal,ms,tflops"] + lines).joined(separator: "\n").utf8 + [10]), to: path)
    }

    /// Writes the causal timings of `methods` (those present) against S as an SVG plot, atomically.
    func writePlot(title: String, methods: [String], lengths: [Int], to path: String) throws {
        let present = methods.filter { method in measurements.contains { $0.0.method == method } }
        let plot = LinePlot(title: title,
                            x: .init(label: "sequence length S", logarithmic: true, ticks: lengths.map(Double.init)),
                            y: .init(label: "milliseconds", logarithmic: true),
                            series: present.enumerated().map { index, method in
            .init(name: method.hasPrefix("torch") || method.hasPrefix("zaya") ? method : "ours " + method,
                  color: LinePlot.colors[index % LinePlot.colors.count],
                  points: measurements.filter { $0.0.method == method && $0.0.causal }.map { (Double($0.0.length), $0.0.milliseconds) })
        })
        try writeAtomically(Array(plot.svg.utf8), to: path)
    }
}
