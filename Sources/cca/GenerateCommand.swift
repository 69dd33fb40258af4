import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a `cca train` checkpoint or a ZAYA model directory, streaming it as it is produced.",
        discussion: "A checkpoint trained with a tokenizer (`cca train --tokenizer`, or a token directory that records one) keeps its "
            + "tokenizer.json: the prompt is encoded and the output decoded with it, and its end-of-text token ends the output. "
            + "Without one, each UTF-8 byte is a token.")

    @Option(help: "Checkpoint directory written by `cca train --out`.") var checkpoint: String?
    @Option(help: "ZAYA model directory (Hugging Face layout) to run instead of a checkpoint.") var model: String?
    @Option(help: "Prompt text (UTF-8; encoded with the checkpoint's tokenizer, or one token per byte).") var prompt: String?
    @Option(help: "Prompt token ids, comma-separated (with --model, instead of --prompt).") var promptIds: String?
    // `.unconditional` reads `--temperature -1` as a value (refused with a reason), not as a missing value.
    @Option(parsing: .unconditional, help: "Tokens to generate.") var maxTokens: Int = 128
    @Option(parsing: .unconditional, help: "Maximum context (prompt + generated tokens) the caches are allocated for.")
    var maxContext: Int = 2048
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(parsing: .unconditional, help: "Keep only the K most likely tokens.") var topK: Int?
    @Option(parsing: .unconditional, help: "Keep the most likely tokens up to this total probability.") var topP: Float?
    @Option(help: "Random seed of the sampler.") var seed: UInt64 = 0
    @Option(help: "Where to run: cpu, or cuda (the model resident on the GPU, its decode cache paged).")
    var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    /// Longer contexts than this are refused outright; shorter ones must also fit in memory (checked once the model is known).
    static let contextLimit = 1 << 24

    func validate() throws {
        guard (checkpoint == nil) != (model == nil) else { throw ValidationError("give either --checkpoint or --model") }
        guard (prompt == nil) != (promptIds == nil) else { throw ValidationError("give either --prompt or --prompt-ids") }
        guard promptIds == nil || model != nil else { throw ValidationError("--prompt-ids goes with --model") }
        guard (1...Self.contextLimit).contains(maxContext) else {
            throw ValidationError("--max-context must be from 1 to \(Self.contextLimit), got \(maxContext)")
        }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be 0 or more, got \(maxTokens)") }
        // The prompt's length in tokens is known once the checkpoint's tokenizer is loaded; it has at least one.
        if checkpoint != nil { try requireFits(promptLength: 1) }
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
        let tokenizer: any Tokenizer = try Checkpoint.tokenizer(directory: checkpoint) ?? ByteTokenizer()
        let promptTokens = tokenizer.encode(prompt)
        try requireFits(promptLength: promptTokens.count)
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
        var output = TextStream(tokenizer: tokenizer)
        print(prompt, terminator: "")
        let decodeStart = clock.now
        var generated = 0
        while generated < maxTokens {
            let token = sampler.sample(logits)
            generated += 1
            if token == tokenizer.eosTokenID { break }
            print(output.append(token), terminator: "")
            fflush(nil)
            if generated < maxTokens { logits = try feed([token]) }
        }
        let decodeSeconds = (clock.now - decodeStart).seconds
        print(output.flush())
        print("\n[\(model.config.attention.rawValue)] prefill \(promptTokens.count) tokens at "
              + format(Double(promptTokens.count) / prefillSeconds) + " tokens/s, decode \(generated) tokens at "
              + format(Double(generated) / max(decodeSeconds, 1e-9)) + " tokens/s, " + stateDescription)
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

/// Token ids in, printable text out: the text of the ids so far less what was printed already, held back while
/// it ends in an incomplete character (a byte token, or a byte-level BPE token, may carry part of one).
struct TextStream {
    let tokenizer: any Tokenizer
    private var ids: [Int] = []
    private var printedCharacters = 0

    init(tokenizer: any Tokenizer) { self.tokenizer = tokenizer }

    /// The whole output is decoded each time, not the new id alone: decoders such as SentencePiece's treat the
    /// start of a text differently, so pieces decoded apart need not join into the text decoded whole.
    mutating func append(_ id: Int) -> String {
        ids.append(id)
        let text = tokenizer.decode(ids, skipSpecialTokens: true)
        return text.hasSuffix("\u{FFFD}") ? "" : newText(text)
    }

    /// What is not printed yet, with incomplete or invalid bytes shown as U+FFFD.
    mutating func flush() -> String { newText(tokenizer.decode(ids, skipSpecialTokens: true)) }

    private mutating func newText(_ text: String) -> String {
        defer { printedCharacters = max(printedCharacters, text.count) }
        return String(text.dropFirst(printedCharacters))
    }
}
