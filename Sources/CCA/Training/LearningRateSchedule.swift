import RealModule

/// Linear warmup to `peak`, then cosine decay to `peak · finalFraction` at `totalSteps`.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var finalFraction: Double = 0.1

    public init(peak: Double, warmupSteps: Int, totalSteps: Int) {
        (self.peak, self.warmupSteps, self.totalSteps) = (peak, warmupSteps, totalSteps)
    }

    /// Throws ``TrainingError/invalidOption(name:value:expected:)`` when the schedule cannot be followed.
    func validate() throws {
        guard peak.isFinite, peak > 0, peak <= 10 else {
            throw TrainingError.invalidOption(name: "learning rate", value: "\(peak)", expected: "a positive number of at most 10")
        }
        try TrainingError.require("steps", totalSteps, in: 1...TrainingOptions.maxSteps)
        try TrainingError.require("warmup", warmupSteps, in: 0...totalSteps)
        guard finalFraction.isFinite, (0...1).contains(finalFraction) else {
            throw TrainingError.invalidOption(name: "final learning-rate fraction", value: "\(finalFraction)", expected: "a number from 0 to 1")
        }
    }

    /// The rate for update number `step` (0-based).
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let progress = min(1, Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps)))
        let cosine = (1 + Double.cos(Double.pi * progress)) / 2
        return peak * (finalFraction + (1 - finalFraction) * cosine)
    }
}
