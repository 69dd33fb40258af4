import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A progress line for long jobs (training, benchmarks, the tour): how far, how fast, and when it will end.
///
/// On a terminal the line is rewritten in place; on a pipe or file one line is written per interval, not
/// one per step, so logs stay short. A job made of a few long steps still shows it is alive: a timer
/// writes the line once per interval even while no update arrives. Lines go to standard error, so the
/// results a command prints on standard output stay clean when redirected.
public final class ProgressReporter: @unchecked Sendable {
    /// Where the lines go and how they are separated.
    public struct Output: Sendable {
        let emit: @Sendable (String) -> Void
        let inPlace: Bool

        /// Standard error; rewritten in place when it is a terminal.
        public static var standardError: Output {
            Output(emit: writeToStandardError, inPlace: isatty(STDERR_FILENO) != 0)
        }

        /// Every line handed to `write`, without a line end, as a pipe would receive them (for tests).
        public static func lines(_ write: @escaping @Sendable (String) -> Void) -> Output {
            Output(emit: { text in write(String(text.dropLast())) }, inPlace: false)
        }
    }

    private let task: String, unit: String, total: Double
    private let interval: Double
    private let output: Output
    private let now: @Sendable () -> Double
    private let queue = DispatchQueue(label: "cca.progress")
    private var timer: (any DispatchSourceTimer)?
    // State below is touched only on `queue`.
    private let start: Double
    private let completedBefore: Double
    private var done: Double, status = "", lastWrite = -Double.infinity, finished = false, wroteFinalLine = false

    /// - Parameters:
    ///   - task: what runs, e.g. "train cca".
    ///   - total: units of work in the job (steps, or any measure of cost); the rate and ETA are in these.
    ///   - unit: the unit's name in the rate ("steps" gives "3.1 steps/s"); empty for a bare percentage.
    ///   - completed: units done before this process started (a resumed run); they do not count in the rate.
    ///   - interval: seconds between lines on a pipe (and between timer lines on a terminal).
    public convenience init(_ task: String, total: Double, unit: String = "", completed: Double = 0, interval: Double = 3,
                            output: Output = .standardError) {
        let clock = ContinuousClock(), origin = clock.now
        self.init(task, total: total, unit: unit, completed: completed, interval: interval, output: output,
                  now: { (clock.now - origin).seconds })
        startTimer()
    }

    /// A reporter on an injected clock and without the timer, for tests.
    init(_ task: String, total: Double, unit: String, completed: Double = 0, interval: Double, output: Output,
         now: @escaping @Sendable () -> Double) {
        (self.task, self.total, self.unit, self.interval, self.output, self.now) = (task, max(total, 0), unit, interval, output, now)
        completedBefore = min(max(completed, 0), max(total, 0))
        done = completedBefore
        start = now()
    }

    deinit { timer?.cancel() }

    /// Records that `done` units are finished; `status` is shown after the numbers (a loss, the current case).
    public func update(done: Double, status: String = "") {
        queue.sync {
            (self.done, self.status) = (min(max(done, 0), total), status)
            let time = now()
            // A terminal line may change often, but not faster than the eye reads it.
            if time - lastWrite >= (output.inPlace ? min(interval, 0.2) : interval) { write(at: time) }
        }
    }

    /// Writes the final line (always) and stops the timer; later updates are ignored.
    public func finish(status: String? = nil) {
        timer?.cancel()
        queue.sync {
            guard !finished else { return }
            let changed = status != nil && status != self.status
            if let status { self.status = status }
            done = total
            if !wroteFinalLine || changed { write(at: now()) }
            finished = true
        }
    }

    /// The line for the current state, e.g. `train cca: 120/300 steps (40%), 3.1 steps/s, ETA 58 s; loss 1.2345`.
    func line(at time: Double) -> String {
        let elapsed = max(time - start, 0)
        var text = task + ": "
        let percent = total > 0 ? NumberFormatting.fixed(100 * done / total, 0) + "%" : "0%"
        text += unit.isEmpty ? percent : "\(Self.count(done))/\(Self.count(total)) \(unit) (\(percent))"
        if finished || done >= total {
            text += ", done in " + Self.duration(elapsed)
        } else if done > completedBefore, elapsed > 0 {
            let rate = (done - completedBefore) / elapsed
            if !unit.isEmpty { text += ", " + NumberFormatting.significant(rate, 3) + " \(unit)/s" }
            text += ", ETA " + Self.duration((total - done) / rate)
        } else {
            text += ", " + Self.duration(elapsed) + " so far"
        }
        return status.isEmpty ? text : text + "; " + status
    }

    private func write(at time: Double) {
        guard !finished else { return }
        lastWrite = time
        wroteFinalLine = done >= total
        let text = line(at: time)
        if output.inPlace {
            output.emit("\r\u{1B}[K" + text + (done >= total ? "\n" : ""))
        } else {
            output.emit(text + "\n")
        }
    }

    private func startTimer() {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            guard let self, !self.finished else { return }
            let time = self.now()
            if time - self.lastWrite >= self.interval * 0.9 { self.write(at: time) }
        }
        self.timer = timer
        timer.resume()
    }

    private static func count(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? "\(Int(value))" : NumberFormatting.significant(value, 3)
    }

    /// `42 s`, `3 min 05 s`, `2 h 07 min`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "unknown" }
        let whole = Int(min(max(seconds, 0), 1e9).rounded())
        if whole < 60 { return "\(whole) s" }
        let (minutes, secondsLeft) = whole.quotientAndRemainder(dividingBy: 60)
        if minutes < 60 { return "\(minutes) min " + (secondsLeft < 10 ? "0" : "") + "\(secondsLeft) s" }
        let (hours, minutesLeft) = minutes.quotientAndRemainder(dividingBy: 60)
        return "\(hours) h " + (minutesLeft < 10 ? "0" : "") + "\(minutesLeft) min"
    }
}

/// Unbuffered, so a line shows at once even when the process later crashes or is killed.
private func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}
