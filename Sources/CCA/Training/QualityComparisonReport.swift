import RealModule

/// The files a ``QualityComparison`` writes: `curves.csv` (every run's validation curve), `summary.md` (the
/// tables) and `validation.svg` / `ablation.svg` (the curves: one colour per arm, seeds thin, their mean bold).
public struct QualityComparisonReport: Sendable {
    public var plan: QualityComparison
    /// The finished runs; arms with fewer seeds than planned show how many they have.
    public var results: [QualityRunResult]

    public init(plan: QualityComparison, results: [QualityRunResult]) { (self.plan, self.results) = (plan, results) }

    /// Final validation losses of one arm over its seeds.
    public struct ArmSummary: Sendable, Equatable {
        public var arm: QualityComparison.Arm
        public var finalLosses: [Double]
        public var mean: Double { finalLosses.reduce(0, +) / Double(max(finalLosses.count, 1)) }
        /// The sample standard deviation over seeds (0 for one seed).
        public var standardDeviation: Double {
            guard finalLosses.count > 1 else { return 0 }
            let mean = self.mean
            return (finalLosses.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(finalLosses.count - 1)).squareRoot()
        }
        public var tokensPerSecond: Double
    }

    public func summary(_ arm: QualityComparison.Arm) -> ArmSummary {
        let runs = results.filter { $0.arm == arm.name }
        return ArmSummary(arm: arm, finalLosses: runs.compactMap { $0.validationCurve.last?.loss },
                          tokensPerSecond: runs.map(\.tokensPerSecond).reduce(0, +) / Double(max(runs.count, 1)))
    }

    public var csv: String {
        "arm,seed,step,validation_loss\n" + results.flatMap { result in
            result.validationCurve.map { "\(result.arm),\(result.seed),\($0.step),\($0.loss)" }
        }.joined(separator: "\n") + "\n"
    }

    public var markdown: String {
        let settings = plan.settings
        let mha = plan.arms.first { $0.name == "mha" }.map(summary)
        let mhaCache = plan.arms.first.map { QualityComparison.cachePerToken($0.config) } ?? 1
        func rows(_ arms: [QualityComparison.Arm]) -> String {
            arms.map { arm in
                let summary = self.summary(arm), config = arm.config
                let loss = summary.finalLosses.isEmpty ? "-"
                    : NumberFormatting.fixed(summary.mean, 4) + " ± " + NumberFormatting.fixed(summary.standardDeviation, 4)
                let delta = mha.flatMap { $0.finalLosses.isEmpty || summary.finalLosses.isEmpty ? nil : summary.mean - $0.mean }
                    .map { ($0 >= 0 ? "+" : "") + NumberFormatting.fixed($0, 4) } ?? "-"
                let cache = QualityComparison.cachePerToken(config)
                return "| \(arm.label) | \(loss) | \(delta) | \(summary.finalLosses.count) | \(config.parameterCount) | \(cache) ("
                    + NumberFormatting.fixed(Double(mhaCache) / Double(cache), 1) + "x less) | "
                    + Self.scientific(plan.trainingFLOPs(config)) + " | "
                    + (summary.finalLosses.isEmpty ? "-" : NumberFormatting.fixed(summary.tokensPerSecond, 0)) + " |"
            }.joined(separator: "\n")
        }
        let header = "| model | final validation loss (mean ± sd) | vs MHA | seeds | parameters | KV cache / token | training FLOPs | tokens/s |\n"
            + "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        return "Preset \(settings.preset.rawValue) (E = \(plan.arms[0].config.hiddenSize), \(plan.arms[0].config.layers) layers, "
            + "\(plan.arms[0].config.heads) MHA heads of \(plan.arms[0].config.headDim)), vocabulary \(settings.vocabSize), "
            + "\(settings.steps) steps of \(settings.batchSize) × \(settings.contextLength) tokens, peak learning rate \(settings.learningRate), "
            + "warmup \(settings.warmupSteps), validation every \(settings.evaluationInterval) steps on \(settings.validationBatches) batches; "
            + "seeds \(plan.seeds.map(String.init).joined(separator: ", ")).\n\n"
            + "Attention kinds:\n\n" + header + rows(plan.arms.filter { !$0.isAblation }) + "\n\n"
            + "CCA ablation ladder (the last rung is the CCA row above):\n\n" + header
            + rows(plan.ladder.enumerated().map { index, arm in
                var rung = arm
                if index == plan.ladder.count - 1 { rung.label = "CCA: two convolutions + value shift + QK-mean" }
                return rung
            }) + "\n\n"
            + "KV cache per token counts the numbers all layers keep per token; training FLOPs are 3× the forward "
            + "(attention, MLP and LM head at full windows) over every training token.\n"
    }

    /// `1.23e12`.
    static func scientific(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return "\(value)" }
        let exponent = Int(Double.log10(value).rounded(.down))
        return NumberFormatting.fixed(value / Double.pow(10, Double(exponent)), 2) + "e\(exponent)"
    }

    /// The validation curves of `arms`, one colour each: every seed as a thin line, the mean over seeds bold.
    public func svg(_ arms: [QualityComparison.Arm], title: String) -> String {
        var series: [LinePlot.Series] = []
        for (index, arm) in arms.enumerated() {
            let color = LinePlot.colors[index % LinePlot.colors.count]
            let curves = results.filter { $0.arm == arm.name }.map(\.validationCurve)
            for curve in curves {
                series.append(.init(name: arm.label, color: color, points: curve.map { (Double($0.step), $0.loss) }, width: 0.7, inLegend: false))
            }
            guard let first = curves.first else { continue }
            // The seeds of an arm share the schedule, so their curves are measured at the same steps.
            let mean = first.indices.map { point in
                (x: Double(first[point].step), y: curves.map { $0[point].loss }.reduce(0, +) / Double(curves.count))
            }
            series.append(.init(name: arm.label, color: color, points: mean, width: 2.6))
        }
        let losses = series.flatMap { $0.points.map(\.y) }
        // A log axis with round linear ticks: the plot spans the losses, not 0 up to them.
        let ticks = LinePlot.linearTicks(low: losses.min() ?? 1, high: losses.max() ?? 2).filter { $0 > 0 }
        return LinePlot(title: title, x: .init(label: "step"), y: .init(label: "validation loss (nats)", logarithmic: true, ticks: ticks),
                        series: series).svg
    }

    /// Writes `curves.csv`, `summary.md`, `validation.svg` and `ablation.svg` into `directory`, each atomically.
    public func write(in directory: String) throws {
        let files = [
            ("curves.csv", csv), ("summary.md", markdown),
            ("validation.svg", svg(plan.arms.filter { !$0.isAblation }, title: "Validation loss by attention kind (\(plan.settings.preset.rawValue))")),
            ("ablation.svg", svg(plan.ladder, title: "CCA ablation ladder (\(plan.settings.preset.rawValue))")),
        ]
        for (name, text) in files {
            do { try writeAtomically(Array(text.utf8), to: directory + "/" + name) } catch {
                throw TrainingError.cannotWrite(path: directory + "/" + name, reason: "\(error)")
            }
        }
    }
}
