/// Whole-model training throughput on the GPU (`cca bench train --device cuda`): full steps of
/// ``CUDATrainingEngine`` in bfloat16 (forward, backward, clipping, AdamW, the loss read the trainer does)
/// on random tokens, for the models the PyTorch anchors (`scripts/train_anchors.py`) build too.
public enum TrainBenchmark {
    /// One model timed.
    public struct Model: Sendable {
        public var preset: LanguageModelConfig.Preset
        public var config: LanguageModelConfig
        public var batch: Int, length: Int
        /// `<attention>-<preset>`, as the anchors name theirs `torch-compile-<preset>`: `mha-gpt2-small`, `cca-wide`.
        public var name: String { "\(config.attention.rawValue)-\(preset.rawValue)" }
    }

    /// MHA at GPT-2-small scale (12 layers, E = 768, T = 1024, batch 16), and at the report's width
    /// (12 layers, E = 2048, d = 128, T = 8192, batch 1) MHA with 16 heads, CCA at C = 4 and CCGQA with 8
    /// query and 2 KV heads, the last two with MLPs widened to MHA's parameter count; vocabulary 50304.
    public static func models() -> [Model] {
        let runs: [(AttentionKind, LanguageModelConfig.Preset, batch: Int, length: Int)] = [
            (.mha, .gpt2Small, 16, 1024), (.mha, .wide, 1, 8192), (.cca, .wide, 1, 8192), (.ccgqa, .wide, 1, 8192),
        ]
        return runs.map { kind, preset, batch, length in
            var options = TrainingOptions()
            (options.attention, options.preset) = (kind, preset)
            var config = Trainer.modelConfig(options)
            config.vocabSize = 50304
            return Model(preset: preset, config: config, batch: batch, length: length)
        }
    }

    /// Times `steps` steps of each model after 3 warm-up steps (kernel builds, cuBLAS set-up). Rows per
    /// model, in the anchors' CSV layout: `<name>` with the median milliseconds per step and, in the
    /// `tflops` field, tokens per second (as the anchors write it); `mfu-<name>` with the model-FLOPs
    /// utilisation in percent against the measured bfloat16 peak; `peak-mib-<name>` with the peak device
    /// memory of the run (weights, master copy, moments, gradients and activations), in the milliseconds field.
    /// A model that cannot train on the GPU (an attention kind without its backward pass yet) is skipped
    /// with the reason logged. With `documentLength`, each model whose rows are longer is timed a second
    /// time, right after, on the same tokens packed as documents of that length (every row cut into pieces,
    /// the target at each cut ignored, as ``PackedSequences`` makes them): rows `<name>-packed<length>`.
    public static func run(models: [Model] = models(), steps: Int = 10, documentLength: Int? = nil,
                           log: (String) -> Void = { print($0) }) throws -> [PrefillBenchmark.Measurement] {
        let context = try CUDAContext.shared()
        let peak = try context.exclusive { try context.measuredBFloat16Peak() }
        log("device: \(context.deviceName), bfloat16 product peak \(NumberFormatting.fixed(peak / 1e12, 0)) TFLOP/s (measured)")
        var rows: [PrefillBenchmark.Measurement] = []
        let runs = models.flatMap { model in
            [(model, nil)] + (documentLength.flatMap { $0 < model.length ? [(model, $0)] : nil } ?? [])
        }
        for (model, pieces) in runs {
            let name = model.name + (pieces.map { "-packed\($0)" } ?? "")
            do {
                try context.releaseCachedMemory()
                context.allocator.resetPeak()
                var engine = try CUDATrainingEngine(model: try LanguageModel<Float>(config: model.config, seed: 0),
                                                    optimizer: AdamW(weightDecay: 0.01), precision: .bfloat16, measurePeak: false)
                var random = SplitMix64(seed: 1)
                let tokens = model.batch * model.length
                var batch = TrainingBatch(inputs: (0..<tokens).map { _ in Int(random.next() % UInt64(model.config.vocabSize)) },
                                          targets: (0..<tokens).map { _ in Int(random.next() % UInt64(model.config.vocabSize)) },
                                          lengths: [Int](repeating: model.length, count: model.batch))
                if let pieces { batch = packed(batch, rowLength: model.length, documentLength: pieces) }
                let clock = ContinuousClock()
                let times = try (0..<(3 + steps)).map { _ in
                    let start = clock.now
                    _ = try engine.step(batch, rate: 3e-4, clipNorm: 1)
                    return (clock.now - start).seconds * 1000
                }.dropFirst(3).sorted()
                let milliseconds = times[times.count / 2]
                let tokensPerSecond = Double(tokens) / (milliseconds / 1000)
                let mfu = 100 * tokensPerSecond * model.config.trainingFLOPsPerToken(length: model.length) / peak
                let peakMiB = Double(engine.memory.peak) / Double(1 << 20)
                rows += [.init(method: name, length: model.length, causal: true, milliseconds: milliseconds, teraflops: tokensPerSecond),
                         .init(method: "mfu-" + name, length: model.length, causal: true, milliseconds: mfu),
                         .init(method: "peak-mib-" + name, length: model.length, causal: true, milliseconds: peakMiB)]
                log("\(name): \(model.config.parameterCount) parameters, B=\(model.batch) T=\(model.length): "
                    + "\(NumberFormatting.fixed(milliseconds, 2)) ms/step, \(NumberFormatting.fixed(tokensPerSecond, 0)) tokens/s, "
                    + "MFU \(NumberFormatting.fixed(mfu, 1))%, peak \(NumberFormatting.fixed(peakMiB, 0)) MiB")
            } catch {
                log("\(name): skipped: \(error)")
            }
        }
        return rows
    }

    /// `batch`'s rows of `rowLength` tokens cut into documents of `documentLength` (the last of a row
    /// shorter), with the target at each cut ignored. (The MFU row still counts each row's attention over its
    /// whole length: the model FLOPs of the unpacked step, so that the two rates compare as tokens/s.)
    static func packed(_ batch: TrainingBatch, rowLength: Int, documentLength: Int) -> TrainingBatch {
        var result = batch
        let pieces = stride(from: 0, to: rowLength, by: documentLength).map { min(documentLength, rowLength - $0) }
        result.lengths = Array(repeating: pieces, count: batch.lengths.count).flatMap { $0 }
        var end = 0
        for length in result.lengths {
            end += length
            result.targets[end - 1] = CrossEntropy.ignored
        }
        return result
    }
}
