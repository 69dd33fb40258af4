import ArgumentParser
import CCA
import CCAServe
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// `cca serve`: an OpenAI-compatible completion server over a `cca train` checkpoint, with continuous batching.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a `cca train` checkpoint or a ZAYA model directory over HTTP: POST /v1/completions (OpenAI-style, streaming with stream: true), GET /v1/models, GET /health.",
        discussion: "Prompts are encoded with the checkpoint's tokenizer.json when it has one (else each UTF-8 byte is a token), as `cca generate` does. Requests are decoded together in one batch; a full queue answers 429.")

    @Option(help: "Checkpoint directory written by `cca train --out`.") var checkpoint: String?
    @Option(help: "ZAYA model directory (Hugging Face layout, with its tokenizer.json) to serve instead of a checkpoint.")
    var model: String?
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (printed at start).") var port: Int = 8000
    @Option(help: "Name of the model in /v1/models and the requests' `model` field (default: the checkpoint directory's name).")
    var modelName: String?
    @Option(help: "Requests decoded together at most.") var maxBatch: Int = 8
    @Option(help: "Requests that may wait for a place in the batch; more are refused with 429.") var queue: Int = 32
    @Option(help: "The largest max_tokens a request may ask for.") var maxTokens: Int = 512
    @Option(help: "Prompt plus generated tokens of one request at most.") var maxContext: Int = 2048
    @Option(help: "Prompt tokens a request feeds per step (long prompts are fed in pieces between decoding steps).")
    var prefillChunk: Int = 32
    @Option(help: "Largest request body in bytes; larger ones are refused with 413.") var maxBodyBytes: Int = 1 << 20
    @Option(help: "per-slot: one forward pass per request, so a completion never depends on the batch; ragged: one pass for the whole batch, faster, equal up to rounding.")
    var batching: CPUDecodeEngine.Batching = .perSlot
    @Option(help: "Where to decode: cpu, or cuda (the model resident on the GPU, every step one ragged batch).")
    var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    func validate() throws {
        guard (checkpoint == nil) != (model == nil) else { throw ValidationError("give either --checkpoint or --model") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535 (0 picks a free port)") }
        guard maxTokens >= 1, maxTokens < maxContext else { throw ValidationError("--max-tokens must be at least 1 and below --max-context (\(maxContext))") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes must be at least 1") }
        do {
            try SchedulerConfig(maxBatch: maxBatch, queueCapacity: queue, maxContext: maxContext, prefillChunk: prefillChunk).validate()
        } catch { throw ValidationError("\(error)") }
    }

    /// What is served: the engine, its tokens, and how it is described in the start line.
    private typealias Served = (engine: any DecodeEngine, tokens: TextTokens, kind: String, mode: String)

    func run() throws {
        let config = SchedulerConfig(maxBatch: maxBatch, queueCapacity: queue, maxContext: maxContext, prefillChunk: prefillChunk)
        // Room for every slot of the batch at the longest context, and the slots of requests just leaving.
        let (cacheTokens, sequences) = (2 * maxBatch * maxContext, 2 * maxBatch)
        let served: Served
        if let path = model {
            served = try zaya(path, cacheTokens: cacheTokens, sequences: sequences)
        } else {
            let model = try LanguageModel<Float>(checkpointDirectory: checkpoint!)
            let tokens = try Checkpoint.tokenizer(directory: checkpoint!).map(TextTokens.init(tokenizer:)) ?? .bytes
            switch device {
            case .cpu:
                served = (CPUDecodeEngine(model: model, batching: batching), tokens, model.config.attention.rawValue, batching.rawValue)
            case .cuda:
                served = (try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: cacheTokens, maxSequences: sequences,
                                                 context: try CUDAContext.shared()),
                          tokens, model.config.attention.rawValue, "cuda \(precision.rawValue)")
            }
        }
        let (engine, tokens, attention, mode) = served
        let scheduler = try Scheduler(engine: engine, config: config, detokenize: tokens.decode)
        let name = modelName ?? (model ?? checkpoint!).split(separator: "/").last.map(String.init) ?? "cca"
        let service = CompletionService(scheduler: scheduler, modelID: name, tokens: tokens, maxTokens: maxTokens)
        let (host, port, maxBodyBytes) = (self.host, self.port, self.maxBodyBytes)
        // The command's entry point is synchronous, so the server runs as a task and this thread waits for it.
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Task {
            do {
                try await CompletionServer.run(service, host: host, port: port, maxBodyBytes: maxBodyBytes) { port in
                    print("serving \(name) (\(attention)) on http://\(host):\(port), batch \(config.maxBatch) (\(mode)), queue \(config.queueCapacity)")
                    fflush(nil)
                }
            } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }
}

extension ServeCommand {
    /// A ZAYA directory served on the CPU (one ``ZayaSession`` per request) or the GPU (the model resident
    /// there, every step one ragged batch). Its tokenizer.json encodes the prompts; the stop tokens of its
    /// generation_config.json (else its config's end-of-text ids) end a completion, as in `cca generate --model`.
    private func zaya(_ path: String, cacheTokens: Int, sequences: Int) throws -> Served {
        let zaya = try ZayaModel(path: path)
        guard let tokenizer = try zayaTokenizer(model: zaya) else {
            throw CommandError("\(path) has no tokenizer.json, and the server takes prompts as text; add the model's tokenizer.json")
        }
        let text = TextTokens(tokenizer: tokenizer)
        let tokens = TextTokens(encode: text.encode, decode: text.decode, stopTokens: text.stopTokens.union(zaya.stopTokenIDs))
        switch device {
        case .cpu:
            return (CPUZayaDecodeEngine(model: zaya), tokens, "zaya", "cpu, per slot")
        case .cuda:
            return (try DeviceDecodeEngine(zaya: zaya, precision: precision, cacheTokens: cacheTokens, maxSequences: sequences,
                                           context: try CUDAContext.shared()),
                    tokens, "zaya", "cuda \(precision.rawValue)")
        }
    }
}

extension CPUDecodeEngine.Batching: ExpressibleByArgument {}

/// The server task's error, handed to the waiting thread (written before the semaphore is signalled).
private final class Outcome: @unchecked Sendable {
    var error: (any Error)?
}
