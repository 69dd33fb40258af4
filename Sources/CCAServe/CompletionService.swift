import CCA
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the endpoints answer, apart from HTTP itself: requests read and checked, handed to the
/// ``Scheduler``, and its events written as OpenAI JSON or server-sent events.
public final class CompletionService: Sendable {
    public let scheduler: Scheduler
    /// The name `/v1/models` lists and requests may give as `model`.
    public let modelID: String
    public let tokens: TextTokens
    /// `max_tokens` when a request gives none (OpenAI's default), and the most a request may ask for.
    public let defaultMaxTokens: Int, maxTokens: Int
    private let created = Int(time(nil))

    public init(scheduler: Scheduler, modelID: String, tokens: TextTokens = .bytes, maxTokens: Int) {
        (self.scheduler, self.modelID, self.tokens, self.maxTokens) = (scheduler, modelID, tokens, maxTokens)
        defaultMaxTokens = min(16, maxTokens)
    }

    /// The body of `GET /v1/models`.
    func models() -> [UInt8] {
        Responses.json(Responses.ModelList(data: [Responses.Model(id: modelID, created: created)]))
    }

    /// The body of `GET /health`.
    func health() -> [UInt8] {
        let status = scheduler.status
        return Responses.json(Responses.Health(model: modelID, active: status.active, queued: status.queued,
                                               maxBatch: scheduler.config.maxBatch, queueCapacity: scheduler.config.queueCapacity,
                                               batchInvariant: scheduler.isBatchInvariant))
    }

    /// A completion request started: the body read, checked and queued.
    struct Started: Sendable {
        let request: CompletionRequest
        let handle: Scheduler.Handle
        let id: String
        let created: Int
    }

    /// Reads and queues a `POST /v1/completions` body; throws the 4xx answer when it cannot be served.
    func start(_ body: [UInt8]) throws(APIError) -> Started {
        let request = try CompletionRequest.parse(body)
        if let model = request.model, model != modelID { throw .modelNotFound(model, served: modelID) }
        let maxTokens = request.maxTokens ?? defaultMaxTokens
        guard maxTokens <= self.maxTokens else {
            throw .invalidValue("max_tokens", "max_tokens \(maxTokens) is more than this server's limit of \(self.maxTokens)")
        }
        let sampler: Sampler
        do {
            sampler = try Sampler(temperature: request.temperature ?? 1, topK: request.topK, topP: request.topP,
                                  seed: request.seed ?? UInt64.random(in: .min ... .max))
        } catch let error as ConfigError {
            throw .invalidValue(Self.field(of: error), "\(error)")
        } catch {
            throw .invalidValue("temperature", "\(error)")
        }
        let generation = GenerationRequest(prompt: tokens.encode(request.prompt), maxTokens: maxTokens, sampler: sampler,
                                           stopStrings: request.stop, stopTokens: tokens.stopTokens)
        do {
            let handle = try scheduler.submit(generation)
            return Started(request: request, handle: handle, id: "cmpl-\(handle.id)", created: Int(time(nil)))
        } catch {
            throw APIError(error)
        }
    }

    /// The whole completion as one JSON body (a request without `stream`).
    func complete(_ started: Started) async throws(APIError) -> [UInt8] {
        var text = ""
        do {
            for try await event in started.handle.events {
                switch event {
                case let .token(_, piece): text += piece
                case let .finished(reason, rest, usage):
                    text += rest
                    return Responses.json(completion(started, text: text, reason: reason, usage: usage))
                }
            }
        } catch {
            throw .server(error)
        }
        // The stream ended without its last event: the request was cancelled because its caller went away.
        throw .server(CancellationError())
    }

    /// Writes the completion as server-sent events: one `data:` line per piece of text, the last with its
    /// finish reason, then `data: [DONE]`; a failure of the model is sent as an error object before `[DONE]`.
    /// When a write fails (the client went away) the request is cancelled, which frees its slot, and the
    /// write's error is rethrown.
    func stream(_ started: Started, write: ([UInt8]) async throws -> Void) async throws {
        func send(_ bytes: [UInt8]) async throws {
            do { try await write(bytes) } catch {
                scheduler.cancel(started.handle.id)
                throw ClientGone(underlying: error)
            }
        }
        do {
            for try await event in started.handle.events {
                switch event {
                case let .token(_, piece) where !piece.isEmpty:
                    try await send(Self.event(completion(started, text: piece, reason: nil, usage: nil)))
                case .token: continue
                case let .finished(reason, rest, _):
                    try await send(Self.event(completion(started, text: rest, reason: reason, usage: nil)))
                }
            }
        } catch let error as ClientGone {
            throw error
        } catch {
            try await send(Self.event(Responses.ErrorBody(.server(error))))
        }
        try await send(Array("data: [DONE]\n\n".utf8))
    }

    /// A write to the client failed.
    struct ClientGone: Error {
        let underlying: any Error
    }

    private func completion(_ started: Started, text: String, reason: FinishReason?, usage: TokenUsage?) -> Responses.Completion {
        Responses.Completion(id: started.id, created: started.created, model: modelID,
                             choices: [Responses.Choice(text: text, finishReason: reason.map(\.rawValue))],
                             usage: usage.map { Responses.Usage(promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, totalTokens: $0.totalTokens) })
    }

    private static func event(_ value: some Encodable) -> [UInt8] { Array("data: ".utf8) + Responses.json(value) + Array("\n\n".utf8) }

    /// The request field a sampler setting came from.
    private static func field(of error: ConfigError) -> String {
        guard case let .invalidValue(name, _, _) = error else { return "temperature" }
        return String(name.map { $0 == "-" ? "_" : $0 })
    }
}
