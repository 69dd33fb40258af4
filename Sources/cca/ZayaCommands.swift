import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Run a ZAYA model directory (Hugging Face layout) on token ids and write the logits.",
        discussion: """
        The model directory holds config.json, the weights (model.safetensors, or shards listed by \
        model.safetensors.index.json; memory-mapped, F32, F16 or BF16) and optionally generation_config.json. \
        The input file holds input_ids (I32 or I64, [B, S]) and optionally attention_mask [B, S] (1 = token, \
        0 = padding); the output holds logits (float32, [B, S, vocab]), 0 at padded positions. With --chunks, \
        every sequence runs through the decode caches in chunks of those lengths (summing to S), which gives \
        the same logits; chunks take no attention_mask. With --device cuda the model runs resident on the GPU \
        (bfloat16 by default, --precision float32), every sequence through the paged decode cache; an attention_mask \
        must then be right padding.
        """)

    @Option(help: "ZAYA model directory.") var model: String
    @Option(help: "Input safetensors with input_ids and an optional attention_mask.") var input: String
    @Option(help: "Output safetensors with logits; written atomically.") var output: String
    @Option(help: "Run each sequence through the decode caches in chunks of these lengths, e.g. 5,1,1,9.")
    var chunks: String?
    @Option(help: "Where to run: cpu, or cuda (the model resident on the GPU; an attention_mask must be right padding there).")
    var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    func run() throws {
        let chunkLengths = try chunks.map { try parseChunkLengths($0) }
        let file = try SafeTensors(contentsOf: input)
        guard let idsEntry = file["input_ids"], [.I32, .I64].contains(idsEntry.dtype), idsEntry.shape.count == 2 else {
            throw ValidationError("\(input) must hold input_ids as I32 or I64 of shape [B, S]"
                                  + (file["input_ids"].map { ", not \($0.dtype) \($0.shape)" } ?? "; it has none"))
        }
        let ids = try file.integerTensor("input_ids")
        let mask = try file["attention_mask"].map { $0.dtype.isFloat ? try file.tensor("attention_mask") : try file.integerTensor("attention_mask") }
        let clock = ContinuousClock()
        let loadStart = clock.now
        let zaya = try ZayaModel(path: model)
        let loadSeconds = (clock.now - loadStart).seconds
        let runStart = clock.now
        let tokens = ids.storage.map { Int($0) }, (batch, length) = (ids.shape[0], ids.shape[1])
        let logits = switch device {
        case .cpu: try zaya.logits(tokens: tokens, batch: batch, length: length, mask: mask, chunkLengths: chunkLengths)
        case .cuda: try DeviceZayaLogits.logits(zaya, tokens: tokens, batch: batch, length: length, mask: mask,
                                                chunkLengths: chunkLengths, precision: precision)
        }
        let runSeconds = (clock.now - runStart).seconds
        try SafeTensors.write(["logits": logits], metadata: ["format": "pt"], to: output)
        print("\(ids.count) tokens: loaded in \(format(loadSeconds)) s, logits in \(format(runSeconds)) s ("
              + format(Double(ids.count) / max(runSeconds, 1e-9)) + " tokens/s) -> \(output)")
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Load a ZAYA model directory and describe it: architecture, weights, load time and memory.",
        discussion: "Loading maps the weight files and converts only the small weights, so it takes seconds and little memory even for ZAYA1-8B.")

    @Option(help: "ZAYA model directory.") var model: String

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let zaya = try ZayaModel(path: model)
        let seconds = (clock.now - start).seconds
        let config = zaya.config, directory = zaya.directory
        let types = Dictionary(grouping: config.resolvedLayerTypes, by: \.rawValue).map { "\($0.key) ×\($0.value.count)" }.sorted()
        print("ZAYA model \(model): \(config.hiddenLayers) layers (\(types.joined(separator: ", "))"
              + (config.slidingWindow.map { ", window \($0)" } ?? "") + "), E = \(config.hiddenSize), CCGQA \(config.attentionHeads)/"
              + "\(config.keyValueHeads) heads of \(config.headDim), \(config.experts) experts of \(config.moeIntermediateSize) (top-1 + skip), "
              + "vocab \(config.vocabSize), \(config.tieWordEmbeddings ? "tied" : "untied") head")
        let stored = directory.tensorNames.compactMap { directory.describe($0) }
        let parameters = stored.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let bytes = stored.reduce(0) { $0 + $1.shape.reduce(1, *) * $1.dtype.byteSize }
        let dtypes = Set(stored.map(\.dtype.rawValue)).sorted().joined(separator: ", ")
        print("weights: \(formatCount(Double(parameters))) parameters, \(formatBytes(bytes)) (\(dtypes)) in \(directory.fileCount) files")
        print("loaded in \(format(seconds)) s; peak resident memory \(formatBytes(peakResidentBytes()))")
    }
}

/// The process's peak resident set size so far.
func peakResidentBytes() -> Int {
    var usage = rusage()
    #if os(Linux)
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    return usage.ru_maxrss * 1024  // kilobytes on Linux, bytes on Darwin
    #else
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
    return usage.ru_maxrss
    #endif
}

/// The tokenizer of a model directory's `tokenizer.json`, or nil when the directory has none (then
/// `--prompt` with `--model` asks for `--prompt-ids`).
func zayaTokenizer(model: ZayaModel) throws -> (any Tokenizer)? {
    try model.directory.tokenizerPath.map { try BPETokenizer(contentsOf: $0) }
}

extension GenerateCommand {
    /// `cca generate --model DIR`: ZAYA decoding on the CPU or (`--device cuda`) the GPU, streaming tokens
    /// (text with a tokenizer, ids without) until --max-tokens or a stop token of generation_config.json.
    func generateZaya(modelPath: String) throws {
        let clock = ContinuousClock()
        let loadStart = clock.now
        let zaya = try ZayaModel(path: modelPath)
        let loadSeconds = (clock.now - loadStart).seconds
        let tokenizer = try zayaTokenizer(model: zaya)
        let promptTokens: [Int]
        if let promptIds {
            promptTokens = try promptIds.split(separator: ",").map { part in
                guard let id = Int(part.trimmingCharacters(in: " ")) else { throw ValidationError("--prompt-ids takes comma-separated token ids, got '\(promptIds)'") }
                return id
            }
        } else if let tokenizer, let prompt {
            promptTokens = tokenizer.encode(prompt)
        } else {
            throw ValidationError("\(modelPath) has no tokenizer.json; pass the prompt as --prompt-ids")
        }
        try requireFits(promptLength: promptTokens.count)
        var sampler = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)
        let capacity = promptTokens.count + maxTokens
        // The sequence's decode state: a CPU session, or the one slot of a GPU engine.
        let next: SampledFeed, stateDescription: () -> String
        switch device {
        case .cpu:
            let session = try ZayaSession(model: zaya, capacity: capacity)
            (next, stateDescription) = ({ tokens, sampler in sampler.sample(try session.feed(tokens)) },
                                        { "decode state " + formatBytes(session.bytes) })
        case .cuda:
            let uploadStart = clock.now
            let engine = try DeviceDecodeEngine(zaya: zaya, precision: precision, cacheTokens: capacity, maxSequences: 1,
                                                context: try CUDAContext.shared())
            let uploadSeconds = (clock.now - uploadStart).seconds
            (next, stateDescription) = (try sampledFeed(engine, capacity: capacity),
                                        { "on cuda (\(precision.rawValue), uploaded in \(format(uploadSeconds)) s)" })
        }
        let prefillStart = clock.now
        var token = try next(promptTokens, &sampler)
        let prefillSeconds = (clock.now - prefillStart).seconds
        var generated: [Int] = [], printed = ""
        let decodeStart = clock.now
        while generated.count < maxTokens {
            generated.append(token)
            if let tokenizer {
                let text = tokenizer.decode(generated)
                print(text.hasPrefix(printed) ? String(text.dropFirst(printed.count)) : "\n" + text, terminator: "")
                printed = text
            } else {
                print(generated.count == 1 ? "\(token)" : ",\(token)", terminator: "")
            }
            fflush(nil)
            if zaya.stopTokenIDs.contains(token) || generated.count == maxTokens { break }
            token = try next([token], &sampler)
        }
        let decodeSeconds = (clock.now - decodeStart).seconds
        print("\n[zaya] loaded in \(format(loadSeconds)) s, prefill \(promptTokens.count) tokens at "
              + format(Double(promptTokens.count) / prefillSeconds) + " tokens/s, decode \(generated.count) tokens at "
              + format(Double(generated.count) / max(decodeSeconds, 1e-9)) + " tokens/s, " + stateDescription())
    }
}
