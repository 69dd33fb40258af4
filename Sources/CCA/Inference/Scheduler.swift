import Dispatch

/// Continuous batching: requests wait in a bounded queue, join the running batch between steps, and each
/// streams its own tokens while the others go on decoding.
///
/// One decode loop drives the ``DecodeEngine``, on a dispatch queue of its own so that the blocking model
/// steps never occupy the threads of Swift's concurrency pool (which serve the HTTP connections). Each step
/// it frees the slots of cancelled requests, admits waiting ones up to ``SchedulerConfig/maxBatch``, and
/// feeds the engine one batch: a token for every decoding request and prompt pieces of
/// ``SchedulerConfig/prefillChunk`` tokens for the others, up to ``SchedulerConfig/stepTokens``.
///
/// A request's tokens depend only on its own prompt, settings and seed: its prompt is cut into the same
/// pieces whatever else runs and it samples with its own generator, so with a batch-invariant engine
/// (``DecodeEngine/isBatchInvariant``) nothing else in the batch can change them.
public final class Scheduler: @unchecked Sendable {
    public let config: SchedulerConfig
    private let engine: any DecodeEngine
    private let detokenize: @Sendable ([Int]) -> String
    private let shared = Locked(SharedState())
    private let loopQueue = DispatchQueue(label: "cca.scheduler.decode-loop")
    /// The requests holding a slot, in order of admission; touched only by the decode loop.
    private var running: [RunningRequest] = []

    /// A scheduler over `engine`; `detokenize` turns a completion's token ids into its text (stop strings
    /// are matched in that text).
    /// - Throws: ``ConfigError`` for limits that cannot work.
    public init(engine: any DecodeEngine, config: SchedulerConfig, detokenize: @escaping @Sendable ([Int]) -> String) throws {
        try config.validate()
        (self.engine, self.config, self.detokenize) = (engine, config, detokenize)
    }

    /// A submitted request: its id (for ``cancel(_:)``) and its events.
    public struct Handle: Sendable {
        public let id: Int
        /// Ends after ``GenerationEvent/finished(reason:text:usage:)``, or throws what the engine threw.
        /// Dropping the stream (or cancelling the task that reads it) cancels the request.
        public let events: AsyncThrowingStream<GenerationEvent, any Error>
    }

    /// Queues a request, or refuses it at once when it breaks a limit or the queue is full.
    public func submit(_ request: GenerationRequest) throws(SchedulerError) -> Handle {
        try check(request)
        let (events, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let id = shared.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        let startLoop = try shared.withLock { state throws(SchedulerError) in
            // Counting the running requests too makes a refusal independent of when the loop admits.
            guard state.waiting.count + state.activeIDs.count < config.maxBatch + config.queueCapacity else {
                continuation.finish()
                throw .queueFull(capacity: config.queueCapacity)
            }
            state.waiting.append(QueuedRequest(id: id, request: request, continuation: continuation))
            defer { state.loopRunning = true }
            return !state.loopRunning
        }
        if startLoop { loopQueue.async { self.runLoop() } }
        return Handle(id: id, events: events)
    }

    /// Cancels a request: a waiting one leaves the queue now, a running one frees its slot at the next step.
    /// Its stream ends with ``FinishReason/cancelled``. Unknown or finished ids are ignored.
    public func cancel(_ id: Int) {
        let removed: QueuedRequest? = shared.withLock { state in
            if let index = state.waiting.firstIndex(where: { $0.id == id }) { return state.waiting.remove(at: index) }
            if state.activeIDs.contains(id) { state.cancelled.insert(id) }
            return nil
        }
        if let removed { removed.continuation.finish(.cancelled, text: "", usage: TokenUsage(promptTokens: removed.request.prompt.count, completionTokens: 0)) }
    }

    /// What the scheduler holds now and has finished so far.
    public struct Status: Sendable, Equatable {
        /// Requests holding a slot (a cancelled one until its slot is freed).
        public var active: Int
        /// Requests waiting for a slot.
        public var queued: Int
        /// Requests finished, by reason.
        public var finished: [FinishReason: Int]
    }

    /// Whether the engine is batch-invariant, so that a request's tokens cannot depend on the batch.
    public var isBatchInvariant: Bool { engine.isBatchInvariant }

    public var status: Status {
        shared.withLock { Status(active: $0.activeIDs.count, queued: $0.waiting.count, finished: $0.finished) }
    }

    /// Returns once no request is waiting or running.
    public func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = shared.withLock { state in
                if !state.loopRunning { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    private func check(_ request: GenerationRequest) throws(SchedulerError) {
        guard !request.prompt.isEmpty else { throw .emptyPrompt }
        guard request.maxTokens >= 1 else { throw .maxTokensNotPositive(request.maxTokens) }
        if let token = request.prompt.first(where: { !(0..<engine.vocabSize).contains($0) }) {
            throw .tokenOutOfRange(token: token, vocabSize: engine.vocabSize)
        }
        guard request.stopStrings.allSatisfy({ !$0.isEmpty }) else { throw .emptyStopString }
        let (total, overflow) = request.prompt.count.addingReportingOverflow(request.maxTokens)
        guard !overflow, total <= config.maxContext else {
            throw .contextExceeded(promptTokens: request.prompt.count, maxTokens: request.maxTokens, maxContext: config.maxContext)
        }
    }

    // MARK: The decode loop

    private func runLoop() {
        while true {
            freeCancelled()
            guard let admitted = admit() else { return }
            for queued in admitted { start(queued) }
            let chunks = plan()
            guard !chunks.isEmpty else { continue }
            do {
                // A chunk draws only when it completes its prompt or is the token sampled last.
                var samplers = chunks.map { running[$0.index].wantsToken(afterFeeding: $0.tokens.count) ? running[$0.index].sampler : nil }
                let tokens = try engine.sampledStep(chunks.map { (running[$0.index].slot, $0.tokens) }, samplers: &samplers)
                for (chunk, (token, sampler)) in zip(chunks, zip(tokens, samplers)) {
                    running[chunk.index].advance(fed: chunk.tokens.count, token: token, sampler: sampler)
                }
            } catch {
                for chunk in chunks { running[chunk.index].failure = error }
            }
            retireFinished()
        }
    }

    private func freeCancelled() {
        let cancelled = shared.withLock { state in
            defer { state.cancelled = [] }
            return state.cancelled
        }
        for index in running.indices where cancelled.contains(running[index].id) { running[index].outcome = .cancelled }
        retireFinished()
    }

    /// The requests that join the batch now; nil (and the loop marked stopped) when there is nothing to do.
    private func admit() -> [QueuedRequest]? {
        let (admitted, waiters) = shared.withLock { state -> ([QueuedRequest]?, [CheckedContinuation<Void, Never>]) in
            let count = min(config.maxBatch - running.count, state.waiting.count)
            let admitted = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            state.activeIDs.formUnion(admitted.map(\.id))
            guard running.isEmpty, admitted.isEmpty else { return (admitted, []) }
            state.loopRunning = false
            defer { state.idleWaiters = [] }
            return (nil, state.idleWaiters)
        }
        for waiter in waiters { waiter.resume() }
        return admitted
    }

    private func start(_ queued: QueuedRequest) {
        do {
            let slot = try engine.makeSlot(capacity: queued.request.prompt.count + queued.request.maxTokens)
            running.append(RunningRequest(queued, slot: slot, detokenize: detokenize))
        } catch {
            shared.withLock { _ = $0.activeIDs.remove(queued.id) }
            queued.continuation.finish(throwing: error)
        }
    }

    /// One chunk of a step: which running request, and its tokens.
    private struct Chunk {
        let index: Int
        let tokens: [Int]
    }

    /// This step's chunks: every decoding request's token first, then prompt pieces while they fit.
    private func plan() -> [Chunk] {
        var chunks = running.indices.compactMap { index in running[index].nextToken.map { Chunk(index: index, tokens: [$0]) } }
        var budget = config.stepTokens - chunks.count
        for (index, request) in running.enumerated() where request.nextToken == nil {
            let prompt = request.request.prompt
            let piece = min(config.prefillChunk, prompt.count - request.promptFed)
            guard piece <= budget else { continue }
            chunks.append(Chunk(index: index, tokens: Array(prompt[request.promptFed..<(request.promptFed + piece)])))
            budget -= piece
        }
        return chunks
    }

    /// Frees the slots of the requests that ended and closes their streams.
    private func retireFinished() {
        let (done, kept) = (running.filter(\.isDone), running.filter { !$0.isDone })
        guard !done.isEmpty else { return }
        running = kept
        for var request in done {
            engine.freeSlot(request.slot)
            shared.withLock { state in
                state.activeIDs.remove(request.id)
                if let reason = request.outcome { state.finished[reason, default: 0] += 1 }
            }
            if let failure = request.failure {
                request.continuation.finish(throwing: failure)
            } else if let reason = request.outcome {
                // A stop string has already cut the text; otherwise the text held back is final now.
                let rest = reason == .stop ? "" : request.text.finish()
                request.continuation.finish(reason, text: rest, usage: TokenUsage(promptTokens: request.request.prompt.count, completionTokens: request.generated))
            }
        }
    }

    // MARK: State

    private struct SharedState {
        var waiting: [QueuedRequest] = []
        /// Requests holding a slot, as seen from outside the loop.
        var activeIDs: Set<Int> = []
        /// Running requests to drop at the next step.
        var cancelled: Set<Int> = []
        var finished: [FinishReason: Int] = [:]
        var nextID = 0
        /// Whether the decode loop is scheduled or running; it stops when it finds nothing to do.
        var loopRunning = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private struct QueuedRequest {
        let id: Int
        let request: GenerationRequest
        let continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
    }

    private struct RunningRequest {
        let id: Int
        let request: GenerationRequest
        let continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
        let slot: Int
        var sampler: Sampler
        var text: CompletionText
        var promptFed = 0
        /// The token sampled last, to be fed next; nil while the prompt is being fed.
        var nextToken: Int?
        var generated = 0
        var outcome: FinishReason?
        var failure: (any Error)?

        init(_ queued: QueuedRequest, slot: Int, detokenize: @escaping @Sendable ([Int]) -> String) {
            (id, request, continuation, self.slot) = (queued.id, queued.request, queued.continuation, slot)
            sampler = queued.request.sampler
            text = CompletionText(stopStrings: queued.request.stopStrings, detokenize: detokenize)
        }

        var isDone: Bool { outcome != nil || failure != nil }

        /// Whether a chunk of `fed` tokens ends with a token to draw: the last piece of the prompt, or the
        /// token sampled last.
        func wantsToken(afterFeeding fed: Int) -> Bool { nextToken != nil || promptFed + fed == request.prompt.count }

        /// Takes in the chunk of `fed` tokens just fed and the token drawn after it by `sampler` (this
        /// request's sampler after the draw), nil for a piece of the prompt that is not its last; a drawn
        /// token is streamed, and the request ends on a stop or at its length.
        mutating func advance(fed: Int, token: Int?, sampler: Sampler?) {
            if nextToken == nil { promptFed += fed }
            guard let token, let sampler else { return }
            self.sampler = sampler
            generated += 1
            if request.stopTokens.contains(token) {
                outcome = .stop
                return
            }
            let (piece, stopped) = text.append(token)
            continuation.yield(.token(id: token, text: piece))
            if stopped {
                outcome = .stop
            } else if generated == request.maxTokens {
                outcome = .length
            } else {
                nextToken = token
            }
        }
    }
}

private extension AsyncThrowingStream<GenerationEvent, any Error>.Continuation {
    /// Sends the last event and ends the stream.
    func finish(_ reason: FinishReason, text: String, usage: TokenUsage) {
        yield(.finished(reason: reason, text: text, usage: usage))
        finish()
    }
}
