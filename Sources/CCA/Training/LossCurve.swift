/// The loss history as CSV and as a hand-written SVG line chart (axes, ticks, labels, train and
/// validation lines).
public enum LossCurve {
    public static func csv(_ history: [LossRecord]) -> String {
        "step,train_loss,validation_loss,learning_rate\n" + history.map { record in
            "\(record.step),\(record.trainLoss),\(record.validationLoss.map { "\($0)" } ?? ""),\(record.learningRate)"
        }.joined(separator: "\n") + "\n"
    }

    public static func svg(_ history: [LossRecord], title: String) -> String {
        let (width, height, left, right, top, bottom) = (720.0, 420.0, 70.0, 20.0, 40.0, 50.0)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let losses = history.flatMap { [$0.trainLoss] + ($0.validationLoss.map { [$0] } ?? []) }.filter(\.isFinite)
        let maxStep = Double(max(1, history.last?.step ?? 1))
        let (low, high) = (min(0, losses.min() ?? 0), max(1e-9, (losses.max() ?? 1) * 1.05))
        func x(_ step: Int) -> Double { left + Double(step) / maxStep * plotWidth }
        func y(_ loss: Double) -> Double { top + (1 - (loss - low) / (high - low)) * plotHeight }
        func format(_ value: Double) -> String { String(Double(Int(value * 100)) / 100) }
        func line(_ points: [(Int, Double)], color: String) -> String {
            guard !points.isEmpty else { return "" }
            let coordinates = points.map { "\(format(x($0.0))),\(format(y($0.1)))" }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(coordinates)\"/>\n"
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(title)</text>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(left + plotWidth)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        for tick in 0...5 {
            let loss = low + (high - low) * Double(tick) / 5, step = Int(maxStep * Double(tick) / 5)
            svg += "<line x1=\"\(left - 4)\" y1=\"\(format(y(loss)))\" x2=\"\(left)\" y2=\"\(format(y(loss)))\" stroke=\"black\"/>"
            svg += "<text x=\"\(left - 8)\" y=\"\(format(y(loss) + 4))\" text-anchor=\"end\">\(format(loss))</text>\n"
            svg += "<line x1=\"\(format(x(step)))\" y1=\"\(top + plotHeight)\" x2=\"\(format(x(step)))\" y2=\"\(top + plotHeight + 4)\" stroke=\"black\"/>"
            svg += "<text x=\"\(format(x(step)))\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(step)</text>\n"
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">step</text>\n"
        svg += "<text x=\"18\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(top + plotHeight / 2))\">loss (nats)</text>\n"
        svg += line(history.map { ($0.step, $0.trainLoss) }, color: "#1f77b4")
        svg += line(history.compactMap { record in record.validationLoss.map { (record.step, $0) } }, color: "#d62728")
        svg += "<text x=\"\(left + plotWidth - 130)\" y=\"\(top + 14)\" fill=\"#1f77b4\">— train</text>\n"
        svg += "<text x=\"\(left + plotWidth - 60)\" y=\"\(top + 14)\" fill=\"#d62728\">— validation</text>\n"
        return svg + "</svg>\n"
    }
}
