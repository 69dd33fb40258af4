import CCA
import Dispatch

/// What the scheduler and server tests share: a tiny model, a plain reference decoder, and an engine whose
/// steps the test releases one by one.
enum ServeTestSupport {
    static let config = LanguageModelConfig.preset(.tiny, attention: .ccgqa)
    static let model = try! LanguageModel<Float>(config: config, seed: 11)

    /// The UTF-8 bytes of `text` read as text, as the byte tokens make it.
    static func text(_ tokens: [Int]) -> String { String(decoding: tokens.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }

    /// The tokens a request generates, computed without the scheduler: one ``DecodeSession``, the prompt fed
    /// in pieces of `prefillChunk`, then each sampled token fed back, until `maxTokens` or a stop token.
    static func reference(prompt: [Int], maxTokens: Int, sampler: Sampler, prefillChunk: Int, stopTokens: Set<Int> = []) throws -> [Int] {
        var sampler = sampler
        let session = try model.makeSession(capacity: prompt.count + maxTokens)
        var logits: [Float] = []
        for start in stride(from: 0, to: prompt.count, by: prefillChunk) {
            logits = try session.feed(Array(prompt[start..<min(prompt.count, start + prefillChunk)]))
        }
        var tokens: [Int] = []
        while tokens.count < maxTokens {
            let token = sampler.sample(logits)
            tokens.append(token)
            if stopTokens.contains(token) || tokens.count == maxTokens { break }
            logits = try session.feed([token])
        }
        return tokens
    }

    /// A prompt of `count` byte tokens, different for each `seed`.
    static func prompt(_ count: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int(generator.next() % 95) + 32 }
    }
}

/// The CPU engine behind a gate: each step is announced on ``steps`` (which slots, how many tokens each) and
/// then waits until the test calls ``allowStep()``, so a test knows exactly what each step held.
final class SteppedEngine: DecodeEngine, @unchecked Sendable {
    let inner = CPUDecodeEngine(model: ServeTestSupport.model)
    let steps: AsyncStream<[Feed]>
    private let announce: AsyncStream<[Feed]>.Continuation
    private let permits = DispatchSemaphore(value: 0)

    /// One slot's part of a step.
    struct Feed: Equatable, Sendable, CustomStringConvertible {
        let slot: Int, tokens: Int
        var description: String { "\(slot):\(tokens)" }
    }

    init() { (steps, announce) = AsyncStream.makeStream() }

    var vocabSize: Int { inner.vocabSize }
    var isBatchInvariant: Bool { inner.isBatchInvariant }
    func makeSlot(capacity: Int) throws -> Int { try inner.makeSlot(capacity: capacity) }
    func freeSlot(_ slot: Int) { inner.freeSlot(slot) }

    func step(_ chunks: [(slot: Int, tokens: [Int])]) throws -> [[Float]] {
        announce.yield(chunks.map { Feed(slot: $0.slot, tokens: $0.tokens.count) })
        permits.wait()
        return try inner.step(chunks)
    }

    /// Lets the step announced last run.
    func allowStep() { permits.signal() }
}

extension AsyncThrowingStream where Element == GenerationEvent {
    /// Every event until the stream ends: the token ids, the whole text and how it finished.
    func collect() async throws -> (tokens: [Int], text: String, reason: FinishReason?, usage: TokenUsage?) {
        var (tokens, text, reason, usage) = ([Int](), "", FinishReason?.none, TokenUsage?.none)
        for try await event in self {
            switch event {
            case let .token(id, piece): tokens.append(id); text += piece
            case let .finished(why, rest, counts): text += rest; (reason, usage) = (why, counts)
            }
        }
        return (tokens, text, reason, usage)
    }
}
