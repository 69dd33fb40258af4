import CCA

extension DecodeBench {
    /// `cca bench decode --device cuda`: ours against the anchors of scripts/decode_anchors.py.
    func runOnDevice() throws {
        let contexts = effectiveContexts
        let ours = try DecodeBenchmark.attention(batches: batches, contexts: contexts, mhaContexts: [stepContext])
            + DecodeBenchmark.steps(kinds: [.ccgqa, .mha], batches: [1, 32].filter(batches.contains),
                                    context: stepContext, layers: layers)
        let anchorRows = try anchors.map { try DecodeBenchmark.anchors(csv: String(decoding: readFile($0), as: UTF8.self), source: $0) } ?? []
        func find(_ method: String, _ batch: Int, _ context: Int, in rows: [DecodeBenchmark.Measurement]) -> DecodeBenchmark.Measurement? {
            rows.first { $0.method == method && $0.batch == batch && $0.context == context }
        }
        let copy = anchorRows.first { $0.method == "copy" }?.bytesPerSecond
        func us(_ m: DecodeBenchmark.Measurement?) -> String { m.map { NumberFormatting.fixed($0.microseconds, 1) } ?? "-" }
        func tb(_ m: DecodeBenchmark.Measurement?) -> String { m?.bytesPerSecond.map { NumberFormatting.fixed($0 / 1e12, 2) } ?? "-" }
        func ratio(_ slow: DecodeBenchmark.Measurement?, _ fast: DecodeBenchmark.Measurement?) -> String {
            guard let slow, let fast else { return "-" }
            return NumberFormatting.fixed(slow.microseconds / fast.microseconds, 2) + "x"
        }
        print("\nDecode attention, one query token, bf16 paged cache, d=128 (speed-up = SDPA time / ours; copy = device-to-device copy"
              + (copy.map { ", \(NumberFormatting.fixed($0 / 1e12, 2)) TB/s read + write" } ?? ", not measured") + ")")
        var rows: [[String]] = []
        for (name, _, _) in DecodeBenchmark.attentionShapes {
            for batch in batches {
                for context in contexts {
                    guard let mine = find("attention-" + name, batch, context, in: ours) else { continue }
                    let sdpa = find("sdpa-" + name, batch, context, in: anchorRows)
                    rows.append([name, "\(batch)", "\(context)", us(mine), tb(mine),
                                 copy.map { NumberFormatting.fixed(100 * mine.bytesPerSecond! / $0, 0) + "%" } ?? "-",
                                 us(sdpa), tb(sdpa), ratio(sdpa, mine)])
                }
            }
        }
        printTable(["shape", "B", "context", "ours us", "ours TB/s", "of copy", "SDPA us", "SDPA TB/s", "speed-up"], rows)
        print("\nWhole decode step at context \(stepContext) (\(layers) blocks, E=2048, bf16; host round trip included; "
              + "graph: replayed as a CUDA graph, launches: kernel by kernel)")
        printTable(["B", "CCGQA graph tok/s", "CCGQA launches tok/s", "MHA graph tok/s", "MHA launches tok/s", "CCGQA / MHA (graphs)",
                    "graph speed-up CCGQA"], [1, 32].compactMap { batch in
            guard let ccgqa = find("step-ccgqa", batch, stepContext, in: ours), let mha = find("step-mha", batch, stepContext, in: ours),
                  let ccgqaLaunches = find("step-ccgqa-launches", batch, stepContext, in: ours),
                  let mhaLaunches = find("step-mha-launches", batch, stepContext, in: ours) else { return nil }
            return ["\(batch)"] + [ccgqa, ccgqaLaunches, mha, mhaLaunches].map { NumberFormatting.fixed($0.tokensPerSecond!, 0) }
                + [ratio(mha, ccgqa), ratio(ccgqaLaunches, ccgqa)]
        })
        if let csv {
            let lines = (ours.map { ("ours", $0) } + anchorRows.map { ("anchor", $0) }).map { source, m in
                "\(source),\(m.method),\(m.batch),\(m.context),\(m.microseconds),\(m.bytesPerSecond.map { "\($0)" } ?? ""),\(m.tokensPerSecond.map { "\($0)" } ?? "")"
            }
            try writeAtomically(Array((["source,method,batch,context,us,bytes_per_s,tokens_per_s"] + lines).joined(separator: "\n").utf8 + [10]), to: csv)
        }
        if let svg {
            var series: [LinePlot.Series] = []
            for shape in DecodeBenchmark.attentionShapes {
                for batch in batches {
                    for (method, rows, label) in [("attention-" + shape.name, ours, "ours"), ("sdpa-" + shape.name, anchorRows, "SDPA")] {
                        let points = rows.filter { $0.method == method && $0.batch == batch }.map { (Double($0.context), $0.microseconds) }
                        guard points.count > 1 else { continue }
                        series.append(LinePlot.Series(name: "\(label) \(shape.name) B=\(batch)",
                                                      color: LinePlot.colors[series.count % LinePlot.colors.count], points: points))
                    }
                }
            }
            let plot = LinePlot(title: "Decode attention over a paged bf16 cache (one query token, d=128)",
                                x: .init(label: "context (tokens)", logarithmic: true, ticks: contexts.map(Double.init)),
                                y: .init(label: "microseconds", logarithmic: true), series: series)
            try writeAtomically(Array(plot.svg.utf8), to: svg)
        }
    }
}
