@testable import CCA
import Testing

/// Axis ticks are round numbers: powers of ten, or 1, 2 and 5 times them, never the range cut in equal
/// log steps (which gave 0.0658, 0.146, 0.325).
@Suite struct LinePlotTests {
    @Test func logarithmicTicksAreRound() {
        // The prefill plot's range: 0.0658 ms to about 3.6 ms.
        #expect(LinePlot.logarithmicTicks(low: 0.0658, high: 3.6) == [0.1, 0.2, 0.5, 1, 2])
        #expect(LinePlot.logarithmicTicks(low: 0.5, high: 5000) == [1, 10, 100, 1000])
        #expect(LinePlot.logarithmicTicks(low: 3, high: 1.5e12).count <= 8)
        // Too narrow for two 1-2-5 ticks: round linear steps instead.
        #expect(LinePlot.logarithmicTicks(low: 3.2, high: 3.9) == [3.2, 3.4, 3.6, 3.8])
    }

    @Test func linearTicksAreRoundSteps() {
        #expect(LinePlot.linearTicks(low: 0, high: 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(LinePlot.linearTicks(low: 0, high: 2.2) == [0, 0.5, 1, 1.5, 2])
    }

    @Test func theSVGShowsTheRoundTicks() {
        let plot = LinePlot(title: "t", x: .init(label: "S", logarithmic: true, ticks: [1024, 2048]),
                            y: .init(label: "ms", logarithmic: true),
                            series: [.init(name: "a", color: "#000", points: [(1024, 0.0658), (2048, 0.325)])])
        #expect(plot.svg.contains(">0.1</text>") && plot.svg.contains(">0.2</text>"))
        #expect(!plot.svg.contains("0.0658</text>") && !plot.svg.contains("0.146"))
    }
}
