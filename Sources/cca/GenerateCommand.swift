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
        let generator = try CheckpointGenerator(checkpoint: checkpoint, device: device, precision: precision)
        let promptTokens = generator.tokenizer.encode(prompt)
        try requireFits(promptLength: promptTokens.count)
        var sampler = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)
        print(prompt, terminator: "")
        let timing = try generator.generate(prompt: promptTokens, maxTokens: maxTokens, sampler: &sampler) { text in
            print(text, terminator: "")
            fflush(nil)
        }
        print("\n\n[\(generator.model.config.attention.rawValue)] prefill \(timing.promptTokens) tokens at "
              + format(Double(timing.promptTokens) / timing.prefillSeconds) + " tokens/s, decode \(timing.generated) tokens at "
              + format(Double(timing.generated) / max(timing.decodeSeconds, 1e-9)) + " tokens/s, " + timing.state)
    }
}
