import RealModule

/// A line chart written as SVG by hand: axes with ticks and labels, one polyline per series, a legend.
/// Loss curves and benchmark plots are drawn with it.
public struct LinePlot {
    public struct Series {
        public var name: String, color: String, points: [(x: Double, y: Double)]
        /// Stroke width in pixels: thin lines for single runs behind a bold mean, say.
        public var width: Double
        /// Whether the series has a line in the legend (one per colour when several series share it).
        public var inLegend: Bool
        public init(name: String, color: String, points: [(x: Double, y: Double)], width: Double = 1.8, inLegend: Bool = true) {
            (self.name, self.color, self.points, self.width, self.inLegend) = (name, color, points, width, inLegend)
        }
    }

    public struct Axis {
        public var label: String
        /// Log scale (values must be positive).
        public var logarithmic: Bool
        /// Tick positions; nil for five even ticks over the data range.
        public var ticks: [Double]?
        public init(label: String, logarithmic: Bool = false, ticks: [Double]? = nil) {
            (self.label, self.logarithmic, self.ticks) = (label, logarithmic, ticks)
        }
    }

    public var title: String, x: Axis, y: Axis, series: [Series]

    public init(title: String, x: Axis, y: Axis, series: [Series]) {
        (self.title, self.x, self.y, self.series) = (title, x, y, series)
    }

    /// The palette series take colours from, in order.
    public static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    public var svg: String {
        let (width, height, left, right, top, bottom) = (760.0, 440.0, 80.0, 190.0, 40.0, 50.0)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
        let ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        let xRange = range(xs, axis: x), yRange = range(ys, axis: y)
        func position(_ value: Double, _ axis: Axis, _ range: (Double, Double)) -> Double {
            let v = axis.logarithmic ? Double.log(max(value, 1e-300)) : value
            return (v - range.0) / max(range.1 - range.0, 1e-300)
        }
        func px(_ value: Double) -> Double { left + position(value, x, xRange) * plotWidth }
        func py(_ value: Double) -> Double { top + (1 - position(value, y, yRange)) * plotHeight }
        func number(_ value: Double) -> String { NumberFormatting.fixed(value, 1) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(number(left + plotWidth / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escaped(title))</text>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(left + plotWidth)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        for tick in ticks(x, xRange) {
            svg += "<line x1=\"\(number(px(tick)))\" y1=\"\(top + plotHeight)\" x2=\"\(number(px(tick)))\" y2=\"\(top + plotHeight + 4)\" stroke=\"black\"/>"
            svg += "<text x=\"\(number(px(tick)))\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(Self.label(tick))</text>\n"
        }
        for tick in ticks(y, yRange) {
            svg += "<line x1=\"\(left - 4)\" y1=\"\(number(py(tick)))\" x2=\"\(left)\" y2=\"\(number(py(tick)))\" stroke=\"black\"/>"
            svg += "<text x=\"\(left - 8)\" y=\"\(number(py(tick) + 4))\" text-anchor=\"end\">\(Self.label(tick))</text>\n"
        }
        svg += "<text x=\"\(number(left + plotWidth / 2))\" y=\"\(height - 10)\" text-anchor=\"middle\">\(escaped(x.label))</text>\n"
        let middle = number(top + plotHeight / 2)
        svg += "<text x=\"18\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(middle))\">\(escaped(y.label))</text>\n"
        var legendLines = 0
        for line in series {
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            if !points.isEmpty {
                let coordinates = points.map { "\(number(px($0.x))),\(number(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" points=\"\(coordinates)\"/>\n"
                if points.count <= 12 {
                    for point in points {
                        svg += "<circle cx=\"\(number(px(point.x)))\" cy=\"\(number(py(point.y)))\" r=\"2.5\" fill=\"\(line.color)\"/>"
                    }
                    svg += "\n"
                }
            }
            guard line.inLegend else { continue }
            let legendY = top + 14 + Double(legendLines) * 18
            legendLines += 1
            svg += "<line x1=\"\(left + plotWidth + 14)\" y1=\"\(legendY - 4)\" x2=\"\(left + plotWidth + 34)\" y2=\"\(legendY - 4)\" stroke=\"\(line.color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(left + plotWidth + 40)\" y=\"\(legendY)\">\(escaped(line.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// The axis range in plot units (log units on a log axis), padded 5% at the top; linear axes start at 0.
    private func range(_ values: [Double], axis: Axis) -> (Double, Double) {
        let all = values + (axis.ticks ?? [])
        guard let low = all.min(), let high = all.max() else { return (0, 1) }
        if axis.logarithmic {
            let (a, b) = (Double.log(max(low, 1e-300)), Double.log(max(high, 1e-300)))
            return b > a ? (a, b + (b - a) * 0.05) : (a - 1, a + 1)
        }
        let start = min(0, low)
        return high > start ? (start, high + (high - start) * 0.05) : (start - 1, start + 1)
    }

    private func ticks(_ axis: Axis, _ range: (Double, Double)) -> [Double] {
        if let ticks = axis.ticks { return ticks }
        if axis.logarithmic { return Self.logarithmicTicks(low: Double.exp(range.0), high: Double.exp(range.1)) }
        return Self.linearTicks(low: range.0, high: range.1 / 1.05)
    }

    /// A tick's label: the number as short as it is (`0.1`, `2`, `16384`), ticks being round.
    static func label(_ tick: Double) -> String {
        if tick.rounded() == tick, abs(tick) < 1e15 { return "\(Int(tick))" }
        var text = NumberFormatting.significant(tick, 3)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    /// About five ticks over `low...high` at a round step: 1, 2 or 5 times a power of ten.
    static func linearTicks(low: Double, high: Double) -> [Double] {
        guard high > low, low.isFinite, high.isFinite else { return [] }
        let raw = (high - low) / 5
        let exponent = Int(Double.log10(raw).rounded(.down))
        let mantissa = [1, 2, 5, 10].first { Double("\($0)e\(exponent)")! >= raw } ?? 10
        let step = Double("\(mantissa)e\(exponent)")!
        // Each tick parsed from its decimal text, so that 3 steps of 0.1 are 0.3, not 0.30000000000000004.
        return stride(from: (low / step).rounded(.up), through: (high / step).rounded(.down), by: 1).map { multiple in
            Double("\(Int(multiple) * mantissa)e\(exponent)")!
        }
    }

    /// Round ticks for a log axis over `low...high`: the powers of ten in it when there are at least three
    /// (every second or third one on a wide range), else 1, 2 and 5 times each power of ten.
    static func logarithmicTicks(low: Double, high: Double) -> [Double] {
        guard low > 0, high >= low, low.isFinite, high.isFinite else { return [] }
        let first = Int(Double.log10(low).rounded(.down)), last = Int(Double.log10(high).rounded(.up))
        // Parsed from decimal text, so that 0.1 is the double nearest 0.1, not an accumulated product.
        func tick(_ mantissa: Int, _ exponent: Int) -> Double { Double("\(mantissa)e\(exponent)")! }
        let powers = (first...last).map { tick(1, $0) }.filter { (low...high).contains($0) }
        if powers.count >= 3 {
            let stride = (powers.count + 7) / 8
            return powers.enumerated().filter { $0.offset % stride == 0 }.map(\.element)
        }
        let roundTicks = (first...last).flatMap { exponent in [1, 2, 5].map { tick($0, exponent) } }.filter { (low...high).contains($0) }
        // A range narrower than from 1 to 2 (or 2 to 5) of a decade gets linear round ticks.
        return roundTicks.count >= 2 ? roundTicks : linearTicks(low: low, high: high)
    }

    private func escaped(_ text: String) -> String {
        text.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
    }
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
