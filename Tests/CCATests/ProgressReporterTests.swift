@testable import CCA
import Foundation
import Testing

/// The progress line on a pipe: one line per interval however often it is updated, with rate and ETA
/// worked out here by hand from the injected clock.
@Suite struct ProgressReporterTests {
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ line: String) { lock.withLock { stored.append(line) } }
        var lines: [String] { lock.withLock { stored } }
    }

    final class Clock: @unchecked Sendable {
        var time = 0.0
    }

    @Test func onePipedLinePerIntervalWithRateAndETA() {
        let recorder = Recorder(), clock = Clock()
        let reporter = ProgressReporter("train cca", total: 10, unit: "steps", interval: 3, output: .lines(recorder.append),
                                        now: { clock.time })
        for (time, done) in [(0.5, 1.0), (1.0, 2), (2.0, 3), (3.5, 5), (4.0, 6), (6.0, 8)] {
            clock.time = time
            reporter.update(done: done, status: "loss 1.5")
        }
        clock.time = 7
        reporter.finish()
        // Lines at 0.5 s (the first update), 3.5 s (3 s later) and the end; 6.0 s is only 2.5 s after 3.5 s.
        // At 0.5 s: 1 step in 0.5 s = 2 steps/s, 9 left = 4.5 s, shown rounded. At 3.5 s: 5/3.5 = 1.43 steps/s, 5 left = 3.5 s.
        #expect(recorder.lines == [
            "train cca: 1/10 steps (10%), 2.00 steps/s, ETA 5 s; loss 1.5",
            "train cca: 5/10 steps (50%), 1.43 steps/s, ETA 4 s; loss 1.5",
            "train cca: 10/10 steps (100%), done in 7 s; loss 1.5",
        ])
    }

    @Test func aResumedJobCountsOnlyItsOwnWorkInTheRate() {
        let recorder = Recorder(), clock = Clock()
        let reporter = ProgressReporter("train", total: 300, unit: "steps", completed: 100, interval: 1, output: .lines(recorder.append),
                                        now: { clock.time })
        clock.time = 10
        reporter.update(done: 150)
        // 50 steps in 10 s = 5 steps/s; 150 left = 30 s.
        #expect(recorder.lines == ["train: 150/300 steps (50%), 5.00 steps/s, ETA 30 s"])
    }

    @Test func withoutUnitsItShowsAPercentageAndTheFinalLineOnce() {
        let recorder = Recorder(), clock = Clock()
        let reporter = ProgressReporter("bench decode", total: 4e9, unit: "", interval: 3, output: .lines(recorder.append), now: { clock.time })
        reporter.update(done: 0, status: "context 1024, mha")
        clock.time = 200
        reporter.update(done: 4e9, status: "context 16384, ccgqa")
        reporter.finish()
        #expect(recorder.lines == ["bench decode: 0%, 0 s so far; context 1024, mha", "bench decode: 100%, done in 3 min 20 s; context 16384, ccgqa"])
    }

    @Test func durations() {
        #expect(ProgressReporter.duration(59.4) == "59 s")
        #expect(ProgressReporter.duration(125) == "2 min 05 s")
        #expect(ProgressReporter.duration(7620) == "2 h 07 min")
        #expect(ProgressReporter.duration(.infinity) == "unknown")
    }
}
