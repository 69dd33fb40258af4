/// The report's quality comparison, scaled down: which models are trained, with which shapes and settings.
///
/// Five attention kinds at equal parameter counts: MHA; GQA and MLA at CCGQA's KV cache; CCA at C = 4;
/// CCGQA at Cq = 2, Ckv = 8. Then the report's ablation ladder on CCA: no convolution, one, two, + value
/// shift, + QK-mean (the last rung is the CCA arm itself). Every arm is trained from each seed on the same
/// tokens with the same schedule; nothing is tuned for one kind. The MLP of every arm is resized to the MHA
/// model's parameter count (``LanguageModelConfig/matchingParameterCount(_:)``), so the counts agree to
/// within half an MLP unit (`3·E·layers / 2` parameters).
public struct QualityComparison: Sendable, Equatable {
    /// CCA's compression C, CCGQA's Cq and Ckv, as in the report and ZAYA1.
    public static let ccaCompression = 4, ccgqaQueryCompression = 2, ccgqaKeyValueCompression = 8

    /// One model of the comparison, trained once per seed.
    public struct Arm: Sendable, Equatable {
        /// A file-name-safe name: `mha`, `ccgqa`, `cca-conv0`.
        public var name: String
        /// What the tables and plots call it.
        public var label: String
        public var config: LanguageModelConfig
        /// Whether the arm is a rung of the ablation ladder (the others are the attention kinds).
        public var isAblation: Bool
    }

    /// One training run: an arm from one seed.
    public struct Run: Sendable, Equatable {
        public var arm: Arm
        public var seed: UInt64
        /// The run's directory name: `cca-seed2`.
        public var name: String { "\(arm.name)-seed\(seed)" }
    }

    /// What every run shares: data, schedule and batches.
    public struct Settings: Codable, Sendable, Equatable {
        public var preset: LanguageModelConfig.Preset
        public var steps: Int, batchSize: Int, contextLength: Int, warmupSteps: Int
        public var learningRate: Double
        public var evaluationInterval: Int, validationBatches: Int
        /// The vocabulary of the data (the tokenizer's), and its checksum: results on other data are not reused.
        public var vocabSize: Int, dataChecksum: UInt64

        public init(preset: LanguageModelConfig.Preset, steps: Int, batchSize: Int, contextLength: Int, warmupSteps: Int,
                    learningRate: Double, evaluationInterval: Int, validationBatches: Int, vocabSize: Int, dataChecksum: UInt64) {
            (self.preset, self.steps, self.batchSize, self.contextLength, self.warmupSteps) = (preset, steps, batchSize, contextLength, warmupSteps)
            (self.learningRate, self.evaluationInterval, self.validationBatches) = (learningRate, evaluationInterval, validationBatches)
            (self.vocabSize, self.dataChecksum) = (vocabSize, dataChecksum)
        }

        /// The settings for `data`, each one not given taken from `preset`'s training defaults (those of
        /// `cca train`), with validation ten times over the run on 8 batches.
        public static func of(_ preset: LanguageModelConfig.Preset, data: TrainingData, steps: Int? = nil, batchSize: Int? = nil,
                              learningRate: Double? = nil, warmupSteps: Int? = nil, evaluationInterval: Int? = nil,
                              validationBatches: Int? = nil) -> Settings {
            let defaults = Trainer.Hyperparameters.of(preset), steps = steps ?? defaults.steps
            return Settings(preset: preset, steps: steps, batchSize: batchSize ?? defaults.batchSize, contextLength: data.length,
                            warmupSteps: warmupSteps ?? min(defaults.warmup, steps), learningRate: learningRate ?? defaults.peakRate,
                            evaluationInterval: evaluationInterval ?? max(1, steps / 10), validationBatches: validationBatches ?? 8,
                            vocabSize: data.vocabSize, dataChecksum: data.checksum ?? 0)
        }

        /// The preset's default tokens per training example.
        public static func defaultContextLength(_ preset: LanguageModelConfig.Preset) -> Int { Trainer.Hyperparameters.of(preset).textLength }
    }

    public var settings: Settings
    public var seeds: [UInt64]
    /// The attention kinds first (MHA first of all), then the ablation rungs.
    public var arms: [Arm]

    /// The plan at `settings.preset`'s width and depth. Its heads are split so that CCGQA's `Ckv = 8` is a
    /// whole number of KV heads: a preset with fewer than 8 heads gets 8 narrower ones (`d = E/8`), for
    /// every kind alike.
    /// - Throws: ``ConfigError`` when the shapes do not work out, ``TrainingError`` for no seeds or repeated ones.
    public init(settings: Settings, seeds: [UInt64]) throws {
        guard !seeds.isEmpty, Set(seeds).count == seeds.count else {
            throw TrainingError.invalidOption(name: "seeds", value: seeds.map(String.init).joined(separator: ","), expected: "one or more different seeds")
        }
        (self.settings, self.seeds) = (settings, seeds)
        var base = LanguageModelConfig.preset(settings.preset, attention: .mha)
        base.vocabSize = settings.vocabSize
        let heads = max(base.heads, Self.ccgqaKeyValueCompression)
        guard heads % Self.ccgqaKeyValueCompression == 0, base.hiddenSize % heads == 0 else {
            throw ConfigError.invalidValue(name: "heads", value: "\(base.heads)",
                                           expected: "a multiple of Ckv = \(Self.ccgqaKeyValueCompression) dividing E = \(base.hiddenSize)")
        }
        (base.heads, base.headDim) = (heads, base.hiddenSize / heads)
        func kind(_ attention: AttentionKind, query: Int? = nil, keyValue: Int? = nil) -> LanguageModelConfig {
            var config = base
            (config.attention, config.queryCompression, config.keyValueCompression) = (attention, query, keyValue)
            return config
        }
        let ccgqa = kind(.ccgqa, query: Self.ccgqaQueryCompression, keyValue: Self.ccgqaKeyValueCompression)
        // GQA shares its KV heads as CCGQA does; MLA's c_kv + d_r is CCGQA's 2·Hkv·d: MHA's cache over Ckv.
        let cacheCompression = Self.ccgqaKeyValueCompression
        let kinds: [(String, String, LanguageModelConfig)] = [
            ("mha", "MHA", base),
            ("gqa", "GQA (G = \(cacheCompression))", kind(.gqa, keyValue: cacheCompression)),
            ("mla", "MLA (c_q = 2, c_kv = \(cacheCompression))", kind(.mla, query: 2, keyValue: cacheCompression)),
            ("cca", "CCA (C = \(Self.ccaCompression))", kind(.cca, query: Self.ccaCompression)),
            ("ccgqa", "CCGQA (Cq = \(Self.ccgqaQueryCompression), Ckv = \(Self.ccgqaKeyValueCompression))", ccgqa),
        ]
        let cca = kinds[3].2
        func rung(convolutions: Int, valueShift: Bool) -> LanguageModelConfig {
            var config = cca
            (config.convolutions, config.valueShift, config.qkMean) = (convolutions, valueShift, false)
            return config
        }
        let ladder: [(String, String, LanguageModelConfig)] = [
            ("cca-conv0", "CCA: no convolution", rung(convolutions: 0, valueShift: false)),
            ("cca-conv1", "CCA: one convolution", rung(convolutions: 1, valueShift: false)),
            ("cca-conv2", "CCA: two convolutions", rung(convolutions: 2, valueShift: false)),
            ("cca-conv2-vs", "CCA: two convolutions + value shift", rung(convolutions: 2, valueShift: true)),
        ]
        let (target, multiple) = (base.parameterCount, settings.preset.mlpWidthMultiple)
        func matched(_ config: LanguageModelConfig) -> LanguageModelConfig { config.matchingParameterCount(target, multipleOf: multiple) }
        arms = kinds.map { Arm(name: $0.0, label: $0.1, config: $0.0 == "mha" ? $0.2 : matched($0.2), isAblation: false) }
            + ladder.map { Arm(name: $0.0, label: $0.1, config: matched($0.2), isAblation: true) }
        for arm in arms { try arm.config.validate() }
    }

    /// Every run, arm by arm, seed by seed.
    public var runs: [Run] { arms.flatMap { arm in seeds.map { Run(arm: arm, seed: $0) } } }

    /// The ablation ladder in the report's order, its last rung (+ QK-mean) being the full CCA arm.
    public var ladder: [Arm] { arms.filter(\.isAblation) + arms.filter { $0.name == "cca" } }

    /// Numbers the decode cache holds per token, over all layers.
    public static func cachePerToken(_ config: LanguageModelConfig) -> Int {
        config.layers * config.attentionLayer().cost.cacheElementsPerToken
    }

    /// Training FLOPs of one run of `config`: three times the forward (forward, and backward's two products per
    /// weight), over every training token, for full windows of ``Settings/contextLength`` tokens.
    /// The forward counts the attention layer (``LayerCost``), the SwiGLU MLP and the LM head.
    public func trainingFLOPs(_ config: LanguageModelConfig) -> Double {
        let length = settings.contextLength
        let mlp = Double(2 * 3 * config.hiddenSize * config.intermediateSize * length)
        let head = Double(2 * config.hiddenSize * config.vocabSize * length)
        let forward = Double(config.layers) * (config.attentionLayer().cost.forwardFLOPs(length: length) + mlp) + head
        return 3 * forward * Double(settings.batchSize * settings.steps)
    }
}
