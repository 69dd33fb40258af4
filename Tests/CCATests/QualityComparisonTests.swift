@testable import CCA
import Foundation
import Testing

/// The quality comparison's plan (runs, shapes, parameter counts, KV cache, FLOPs) against numbers worked out
/// here from the shapes, and its resumability: finished runs are not redone, interrupted ones continue.
@Suite struct QualityComparisonTests {
    static func settings(steps: Int = 300, vocabSize: Int = 8192) -> QualityComparison.Settings {
        QualityComparison.Settings(preset: .tiny, steps: steps, batchSize: 16, contextLength: 32, warmupSteps: 20, learningRate: 0.01,
                                   evaluationInterval: 30, validationBatches: 8, vocabSize: vocabSize, dataChecksum: 7)
    }

    /// The tiny preset (E = 32, 2 layers) split into 8 heads of d = 4.
    @Test func thePlanHasEveryArmAndSeedWithTheReportsShapes() throws {
        let plan = try QualityComparison(settings: Self.settings(), seeds: [1, 2, 3])
        #expect(plan.arms.map(\.name) == ["mha", "gqa", "mla", "cca", "ccgqa", "cca-conv0", "cca-conv1", "cca-conv2", "cca-conv2-vs"])
        #expect(plan.runs.count == 27 && Set(plan.runs.map(\.name)).count == 27)
        #expect(plan.runs.filter { $0.arm.name == "ccgqa" }.map(\.seed) == [1, 2, 3])
        let (e, layers, d) = (32, 2, 4)
        for arm in plan.arms {
            #expect(arm.config.hiddenSize == e && arm.config.layers == layers && arm.config.heads == 8 && arm.config.headDim == d)
            #expect(arm.config.vocabSize == 8192)
        }
        func layer(_ name: String) -> any AttentionConfig { plan.arms.first { $0.name == name }!.config.attentionLayer() }
        let gqa = try #require(layer("gqa") as? GQAConfig), mla = try #require(layer("mla") as? MLAConfig)
        let cca = try #require(layer("cca") as? CCAConfig), ccgqa = try #require(layer("ccgqa") as? CCAConfig)
        #expect((gqa.queryHeads, gqa.keyValueHeads) == (8, 1))
        #expect((cca.queryHeads, cca.keyValueHeads) == (8 / 4, 8 / 4))
        #expect((ccgqa.queryHeads, ccgqa.keyValueHeads) == (8 / 2, 8 / 8))
        #expect(mla.queryRank == e / 2 && mla.ropeHeadDim == d / 2)
        // KV cache per token and layer: MHA keeps 2E; CCGQA 2·Hkv·d = 2E/8; GQA the same; MLA c_kv + d_r = 2E/8; CCA 2E/4.
        let expected = ["mha": 2 * e, "gqa": 2 * e / 8, "mla": 2 * e / 8, "cca": 2 * e / 4, "ccgqa": 2 * e / 8,
                        "cca-conv0": 2 * e / 4, "cca-conv1": 2 * e / 4, "cca-conv2": 2 * e / 4, "cca-conv2-vs": 2 * e / 4]
        for arm in plan.arms { #expect(QualityComparison.cachePerToken(arm.config) == layers * expected[arm.name]!, "\(arm.name)") }
    }

    @Test func theAblationLadderAddsOneComponentPerRung() throws {
        let plan = try QualityComparison(settings: Self.settings(), seeds: [1])
        let rungs = plan.ladder.map { ($0.config.convolutions, $0.config.valueShift, $0.config.qkMean) }
        #expect(rungs.map(\.0) == [0, 1, 2, 2, 2])
        #expect(rungs.map(\.1) == [false, false, false, true, true])
        #expect(rungs.map(\.2) == [false, false, false, false, true])
        #expect(plan.ladder.last?.name == "cca")
        #expect(plan.ladder.allSatisfy { $0.config.queryCompression == 4 && $0.config.attention == .cca })
    }

    /// Counted from the models' real weights, every arm is within half an MLP unit (3·E·layers/2) of MHA, whose
    /// count is worked out here: embedding V·E, final norm E, and per layer two norms, 4E² attention and 3·E·I MLP.
    @Test func everyArmHasMHAsParameterCountWithinHalfAnMLPUnit() throws {
        let plan = try QualityComparison(settings: Self.settings(vocabSize: 300), seeds: [1])
        let (v, e, layers, i) = (300, 32, 2, 64)
        let mhaCount = v * e + e + layers * (2 * e + 4 * e * e + 3 * e * i)
        for arm in plan.arms {
            let model = try LanguageModel<Float>(config: arm.config, seed: 1)
            let count = model.parameters.values.reduce(0) { $0 + $1.count }
            #expect(abs(count - mhaCount) <= 3 * e * layers / 2, "\(arm.name): \(count) vs \(mhaCount)")
        }
        #expect(plan.arms.map(\.config.intermediateSize).contains { $0 != i }, "the MLP absorbs the attention's difference")
    }

    /// MHA's training FLOPs worked out from the report's formula: per sequence of S tokens and layer,
    /// 8SE² + 4S²E/2 (causal) attention and 2·3·S·E·I MLP, plus 2·S·E·V for the head; three times for training.
    @Test func trainingFLOPsFollowTheCostModel() throws {
        let plan = try QualityComparison(settings: Self.settings(), seeds: [1])
        let (s, e, i, v, layers, sequences) = (32.0, 32.0, 64.0, 8192.0, 2.0, 16.0 * 300)
        let forward = layers * (8 * s * e * e + 2 * s * s * e + 6 * s * e * i) + 2 * s * e * v
        #expect(abs(plan.trainingFLOPs(plan.arms[0].config) / (3 * forward * sequences) - 1) < 1e-12)
    }

    @Test func repeatedOrMissingSeedsAreRefused() {
        #expect(throws: TrainingError.self) { try QualityComparison(settings: Self.settings(), seeds: []) }
        #expect(throws: TrainingError.self) { try QualityComparison(settings: Self.settings(), seeds: [1, 1]) }
    }

    /// Counts the updates every engine it makes does.
    final class StepCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var steps: Int { lock.withLock { count } }
        func add() { lock.withLock { count += 1 } }

        struct Engine: TrainingEngine {
            var inner: CPUTrainingEngine
            let counter: StepCounter
            mutating func step(_ batch: TrainingBatch, rate: Double, clipNorm: Double) throws -> Double {
                counter.add()
                return try inner.step(batch, rate: rate, clipNorm: clipNorm)
            }
            func loss(_ batch: TrainingBatch) throws -> Double { try inner.loss(batch) }
            func snapshot() throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>) { try inner.snapshot() }
        }

        var factory: @Sendable (LanguageModel<Float>, AdamW<Float>) throws -> any TrainingEngine {
            { Engine(inner: CPUTrainingEngine(model: $0, optimizer: $1), counter: self) }
        }
    }

    /// The whole comparison at 2 steps from one seed; a rerun trains nothing, an interrupted run continues,
    /// a removed result is trained again, and other settings start the runs afresh.
    @Test func aRerunReusesFinishedRunsAndContinuesAnInterruptedOne() throws {
        let corpus = try TokenizedCorpus.make()
        let data = try TrainingData.open(corpus.data, length: 8)
        var settings = QualityComparison.Settings.of(.tiny, data: data, steps: 2, batchSize: 1, warmupSteps: 1, evaluationInterval: 1,
                                                     validationBatches: 1)
        let plan = try QualityComparison(settings: settings, seeds: [4])
        let out = corpus.root + "/quality"
        let counter = StepCounter()
        let first = try plan.run(dataPath: corpus.data, outDirectory: out, engine: counter.factory, progress: nil)
        #expect(counter.steps == 9 * 2 && first.count == 9)
        #expect(first.allSatisfy { $0.validationCurve.map(\.step) == [1, 2] && $0.config.vocabSize == data.vocabSize })
        for file in ["curves.csv", "summary.md", "validation.svg", "ablation.svg"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        #expect(try String(contentsOfFile: out + "/curves.csv", encoding: .utf8).split(separator: "\n").count == 1 + 9 * 2)

        #expect(try plan.run(dataPath: corpus.data, outDirectory: out, engine: counter.factory, progress: nil) == first)
        #expect(counter.steps == 9 * 2)

        // One run stopped after its first step (as an interruption leaves it): the rerun does the remaining step only.
        let interrupted = plan.runs[3], directory = QualityComparison.directory(of: interrupted, in: out)
        var options = plan.trainingOptions(interrupted, dataPath: corpus.data, directory: directory, resume: false)
        options.stopAfter = 1
        try Trainer.run(options)
        try FileManager.default.removeItem(atPath: directory + "/" + QualityComparison.resultFileName)
        #expect(plan.state(of: interrupted, in: directory) == .resume)
        let continued = try plan.run(dataPath: corpus.data, outDirectory: out, engine: counter.factory, progress: nil)
        #expect(counter.steps == 9 * 2 + 1)
        #expect(continued[3].history.map(\.step) == [1, 2])

        // A finished run whose result file is gone cannot tell its speed: it is trained again from the start.
        try FileManager.default.removeItem(atPath: QualityComparison.directory(of: plan.runs[0], in: out) + "/" + QualityComparison.resultFileName)
        #expect(plan.state(of: plan.runs[0], in: QualityComparison.directory(of: plan.runs[0], in: out)) == .start)
        _ = try plan.run(dataPath: corpus.data, outDirectory: out, engine: counter.factory, progress: nil)
        #expect(counter.steps == 9 * 2 + 1 + 2)

        // Another learning rate is another comparison: nothing is reused.
        settings.learningRate *= 2
        let other = try QualityComparison(settings: settings, seeds: [4])
        #expect(other.runs.allSatisfy { other.state(of: $0, in: QualityComparison.directory(of: $0, in: out)) == .start })
    }
}
