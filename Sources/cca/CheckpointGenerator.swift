import CCA
#if canImport(Glibc)
import Glibc
#endif

/// A `cca train` checkpoint ready to generate from, on the CPU or the GPU: its model, its tokenizer (one
/// token per byte when it has none) and, per call, a decode state of one sequence sized for the prompt and
/// the new tokens. `cca generate --checkpoint` and the sample at the end of `cca train` both use it.
struct CheckpointGenerator {
    let model: LanguageModel<Float>
    let tokenizer: any Tokenizer
    let device: Device
    let precision: CUDAPrecision

    /// What one call did, for the summary line.
    struct Timing {
        var promptTokens: Int, prefillSeconds: Double
        var generated: Int, decodeSeconds: Double
        /// Where the decode state lived: its size on the CPU, or the device and precision.
        var state: String
    }

    init(checkpoint: String, device: Device, precision: CUDAPrecision) throws {
        tokenizer = try Checkpoint.tokenizer(directory: checkpoint) ?? ByteTokenizer()
        model = try LanguageModel<Float>(checkpointDirectory: checkpoint)
        (self.device, self.precision) = (device, precision)
    }

    /// Feeds `prompt`, then samples up to `maxTokens` tokens, stopping early at the tokenizer's end-of-text
    /// token, and hands each newly printable piece of text to `emit` as it comes (the rest at the end).
    func generate(prompt: [Int], maxTokens: Int, sampler: inout Sampler, emit: (String) -> Void) throws -> Timing {
        let capacity = prompt.count + maxTokens
        let next: SampledFeed, state: String
        switch device {
        case .cpu:
            try requireMemory(forContext: capacity, of: model.config)
            let session = try model.makeSession(capacity: capacity)
            next = { tokens, sampler in sampler.sample(try session.feed(tokens)) }
            state = "decode state " + formatBytes(session.bytes)
        case .cuda:
            let engine = try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: capacity, maxSequences: 1,
                                                context: try CUDAContext.shared())
            next = try sampledFeed(engine, capacity: capacity)
            state = "on cuda (\(precision.rawValue))"
        }
        let clock = ContinuousClock()
        let prefillStart = clock.now
        var token = try next(prompt, &sampler)
        let prefillSeconds = (clock.now - prefillStart).seconds
        var output = TextStream(tokenizer: tokenizer)
        let decodeStart = clock.now
        var generated = 0
        while generated < maxTokens {
            generated += 1
            if token == tokenizer.eosTokenID { break }
            emit(output.append(token))
            if generated < maxTokens { token = try next([token], &sampler) }
        }
        emit(output.flush())
        return Timing(promptTokens: prompt.count, prefillSeconds: prefillSeconds, generated: generated,
                      decodeSeconds: (clock.now - decodeStart).seconds, state: state)
    }
}

/// Feeds one sequence its next tokens and draws the token after them with the sampler.
typealias SampledFeed = ([Int], inout Sampler) throws -> Int

/// The ``SampledFeed`` of a new slot of `capacity` tokens in `engine`, sampling where the engine keeps its
/// logits (on the GPU for ``DeviceDecodeEngine``: only the token comes back).
func sampledFeed(_ engine: any DecodeEngine, capacity: Int) throws -> SampledFeed {
    let slot = try engine.makeSlot(capacity: capacity)
    return { tokens, sampler in
        var samplers: [Sampler?] = [sampler]
        let token = try engine.sampledStep([(slot: slot, tokens: tokens)], samplers: &samplers)[0]
        sampler = samplers[0] ?? sampler
        guard let token else { throw CommandError("the engine drew no token for a chunk that had a sampler") }
        return token
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
