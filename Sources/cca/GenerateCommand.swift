import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a `cca train` checkpoint (byte tokens) or a ZAYA model directory, streaming it as it is produced.")

    @Option(help: "Checkpoint directory written by `cca train --out`.") var checkpoint: String?
    @Option(help: "ZAYA model directory (Hugging Face layout) to run instead of a checkpoint.") var model: String?
    @Option(help: "Prompt text (UTF-8; one token per byte for a checkpoint).") var prompt: String?
    @Option(help: "Prompt token ids, comma-separated (with --model, instead of --prompt).") var promptIds: String?
    // `.unconditional` reads `--temperature -1` as a value (refused with a reason), not as a missing value.
    @Option(parsing: .unconditional, help: "Tokens to generate.") var maxTokens: Int = 128
    @Option(parsing: .unconditional, help: "Maximum context (prompt + generated tokens) the caches are allocated for.")
    var maxContext: Int = 2048
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(parsing: .unconditional, help: "Keep only the K most likely tokens.") var topK: Int?
    @Option(parsing: .unconditional, help: "Keep the most likely tokens up to this total probability.") var topP: Float?
    @Option(help: "Random seed of the sampler.") var seed: UInt64 = 0
    @Option(help: "Where to run a checkpoint: cpu, or cuda (the model resident on the GPU, its decode cache paged).")
    var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    /// Longer contexts than this are refused outright; shorter ones must also fit in memory (checked once the model is known).
    static let contextLimit = 1 << 24

    func validate() throws {
        guard (checkpoint == nil) != (model == nil) else { throw ValidationError("give either --checkpoint or --model") }
        guard (prompt == nil) != (promptIds == nil) else { throw ValidationError("give either --prompt or --prompt-ids") }
        guard promptIds == nil || model != nil else { throw ValidationError("--prompt-ids goes with --model") }
        guard device == .cpu || checkpoint != nil else { throw ValidationError("--device cuda runs a --checkpoint; ZAYA models run on the CPU") }
        guard (1...Self.contextLimit).contains(maxContext) else {
            throw ValidationError("--max-context must be from 1 to \(Self.contextLimit), got \(maxContext)")
        }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be 0 or more, got \(maxTokens)") }
        if let prompt, checkpoint != nil { try requireFits(promptLength: prompt.utf8.count) }
        try validating { _ = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed) }
    }

    /// Throws unless a prompt of `promptLength` tokens and `--max-tokens` fit `--max-context`.
    func requireFits(promptLength: Int) throws {
        guard promptLength > 0 else { throw ValidationError("\(GenerationError.emptyPrompt)") }
        // Compared without adding, so that values near Int.max cannot wrap.
        guard promptLength <= maxContext, maxTokens <= maxContext - promptLength else {
            throw ValidationError("--max-tokens \(maxTokens) after a prompt of \(promptLength) tokens does not fit --max-context \(maxContext); "
                                  + "use --max-tokens from 0 to \(max(0, maxContext - promptLength)) or raise --max-context")
        }
    }

    func run() throws {
        guard let checkpoint, let prompt else { return try generateZaya(modelPath: model!) }
        let promptTokens = Array(prompt.utf8).map(Int.init)
        let model = try LanguageModel<Float>(checkpointDirectory: checkpoint)
        let capacity = promptTokens.count + maxTokens
        var sampler = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)
        // The model's decode state: a CPU session, or one slot of the GPU engine.
        let feed: ([Int]) throws -> [Float], stateDescription: String
        switch device {
        case .cpu:
            try requireMemory(forContext: capacity, of: model.config)
            let session = try model.makeSession(capacity: capacity)
            feed = session.feed
            stateDescription = "decode state " + formatBytes(session.bytes)
        case .cuda:
            let engine = try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: capacity, maxSequences: 1,
                                                context: try CUDAContext.shared())
            let slot = try engine.makeSlot(capacity: capacity)
            feed = { try engine.step([(slot: slot, tokens: $0)])[0] }
            stateDescription = "on cuda (\(precision.rawValue))"
        }
        let clock = ContinuousClock()
        let prefillStart = clock.now
        var logits = try feed(promptTokens)
        let prefillSeconds = (clock.now - prefillStart).seconds
        var output = UTF8Stream()
        print(prompt, terminator: "")
        let decodeStart = clock.now
        for step in 0..<maxTokens {
            let token = sampler.sample(logits)
            print(output.append(UInt8(truncatingIfNeeded: token)), terminator: "")
            fflush(nil)
            if step + 1 < maxTokens { logits = try feed([token]) }
        }
        let decodeSeconds = (clock.now - decodeStart).seconds
        print(output.flush())
        print("\n[\(model.config.attention.rawValue)] prefill \(promptTokens.count) tokens at "
              + format(Double(promptTokens.count) / prefillSeconds) + " tokens/s, decode \(maxTokens) tokens at "
              + format(Double(maxTokens) / max(decodeSeconds, 1e-9)) + " tokens/s, " + stateDescription)
    }
}

/// Throws unless the decode caches for `context` tokens fit in this machine's memory.
func requireMemory(forContext context: Int, of config: LanguageModelConfig) throws {
    let perToken = config.attentionLayer().cost.cacheElementsPerToken * MemoryLayout<Float>.size * config.layers
    let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    let (needed, overflow) = perToken.multipliedReportingOverflow(by: context)
    guard !overflow, needed <= physical else {
        throw CommandError("a context of \(context) tokens needs " + (overflow ? "more bytes than can be counted" : formatBytes(needed))
                           + " of decode caches, more than this machine's " + formatBytes(physical) + "; lower --max-tokens")
    }
}

/// Bytes in, printable text out: holds back the bytes of a character that is not complete yet.
struct UTF8Stream {
    private var pending: [UInt8] = []

    mutating func append(_ byte: UInt8) -> String {
        pending.append(byte)
        let lead = pending[0]
        let needed = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 1
        guard pending.count >= needed else { return "" }
        return flush()
    }

    /// Whatever is pending, with invalid bytes shown as U+FFFD.
    mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
