@testable import CCA
import Testing

/// The continuous-batching scheduler against a plain reference decoder (one ``DecodeSession`` and one
/// ``Sampler`` per request), and its limits, queue, cancellation and stop strings.
@Suite struct ServeSchedulerTests {
    typealias Support = ServeTestSupport

    /// Requests of several prompt lengths (some longer than a prompt piece), temperatures and seeds.
    static func requests() throws -> [GenerationRequest] {
        let promptLengths = [3, 20, 1, 9, 33, 5, 14], maxTokens = [12, 5, 20, 9, 7, 16, 3]
        let temperatures: [Float] = [1, 0.7, 0, 1.3, 1, 0.9, 1]
        return try promptLengths.indices.map { index in
            let sampler = try Sampler(temperature: temperatures[index], topK: index == 3 ? 20 : nil, topP: index == 5 ? 0.9 : nil,
                                      seed: UInt64(100 + index))
            return GenerationRequest(prompt: Support.prompt(promptLengths[index], seed: UInt64(index)), maxTokens: maxTokens[index], sampler: sampler)
        }
    }

    @Test func eachRequestGetsTheReferenceTokensAloneAndInAnyBatch() async throws {
        let requests = try Self.requests()
        let config = SchedulerConfig(maxBatch: 3, queueCapacity: 16, maxContext: 64, prefillChunk: 8)
        let expected = try requests.map {
            try Support.reference(prompt: $0.prompt, maxTokens: $0.maxTokens, sampler: $0.sampler, prefillChunk: config.prefillChunk)
        }
        #expect(Set(expected).count == requests.count, "the requests should differ from each other for this test to mean anything")

        let scheduler = try Scheduler(engine: CPUDecodeEngine(model: Support.model), config: config, detokenize: Support.text)
        for (request, tokens) in zip(requests, expected) {
            let alone = try await scheduler.submit(request).events.collect()
            #expect(alone.tokens == tokens)
            #expect(alone.text == Support.text(tokens))
            #expect(alone.reason == .length && alone.usage == TokenUsage(promptTokens: request.prompt.count, completionTokens: request.maxTokens))
        }
        // All at once: at most 3 run together, the others wait and join as places free up.
        let handles = try requests.map { try scheduler.submit($0) }
        for (handle, tokens) in zip(handles, expected) {
            #expect(try await handle.events.collect().tokens == tokens)
        }
        await scheduler.waitUntilIdle()
        #expect(scheduler.status == Scheduler.Status(active: 0, queued: 0, finished: [.length: 2 * requests.count]))
    }

    @Test func aRequestJoinsWhileAnotherDecodesAndItsPromptIsFedInPieces() async throws {
        let engine = SteppedEngine()
        let scheduler = try Scheduler(engine: engine, config: SchedulerConfig(maxBatch: 4, prefillChunk: 8), detokenize: Support.text)
        var steps = engine.steps.makeAsyncIterator()
        let first = try scheduler.submit(GenerationRequest(prompt: Support.prompt(5, seed: 1), maxTokens: 40, sampler: Sampler(seed: 1)))
        var seen: [[SteppedEngine.Feed]] = []
        seen.append(await steps.next()!)
        engine.allowStep()
        seen.append(await steps.next()!)
        // Submitted while step 2 runs: the loop admits it before step 3.
        let second = try scheduler.submit(GenerationRequest(prompt: Support.prompt(30, seed: 2), maxTokens: 3, sampler: Sampler(seed: 2)))
        engine.allowStep()
        for _ in 0..<6 {
            seen.append(await steps.next()!)
            engine.allowStep()
        }
        let feeds = { (pairs: [(Int, Int)]) in pairs.map { SteppedEngine.Feed(slot: $0.0, tokens: $0.1) } }
        // The first request decodes a token in every step while the second's 30-token prompt goes in as 8, 8, 8, 6.
        #expect(seen == [feeds([(0, 5)]), feeds([(0, 1)]), feeds([(0, 1), (1, 8)]), feeds([(0, 1), (1, 8)]),
                         feeds([(0, 1), (1, 8)]), feeds([(0, 1), (1, 6)]), feeds([(0, 1), (1, 1)]), feeds([(0, 1), (1, 1)])])
        let secondResult = try await second.events.collect()
        #expect(secondResult.reason == .length && secondResult.tokens.count == 3)
        #expect(scheduler.status.active == 1, "the first request is still decoding")
        // Cancelled between steps or during one: either way no step after the next holds it.
        scheduler.cancel(first.id)
        engine.allowStep()
        await scheduler.waitUntilIdle()
        #expect(try await first.events.collect().reason == .cancelled)
        #expect(engine.inner.slotCount == 0)
    }

    @Test func aFullQueueRefusesAtOnce() async throws {
        let engine = SteppedEngine()
        let scheduler = try Scheduler(engine: engine, config: SchedulerConfig(maxBatch: 1, queueCapacity: 2, prefillChunk: 4), detokenize: Support.text)
        var steps = engine.steps.makeAsyncIterator()
        let request = GenerationRequest(prompt: [65, 66], maxTokens: 2, sampler: try Sampler(seed: 3))
        let running = try scheduler.submit(request)
        _ = await steps.next()  // the first is in the batch; two may wait
        let waiting = try (0..<2).map { _ in try scheduler.submit(request) }
        #expect(throws: SchedulerError.queueFull(capacity: 2)) { try scheduler.submit(request) }
        #expect(scheduler.status.queued == 2 && scheduler.status.active == 1)
        // Cancelling a waiting request frees its place in the queue at once.
        scheduler.cancel(waiting[0].id)
        let replacement = try scheduler.submit(request)
        for _ in 0..<6 { engine.allowStep() }  // two steps each: the prompt, then the first token
        for handle in [running, waiting[1], replacement] { #expect(try await handle.events.collect().reason == .length) }
        #expect(try await waiting[0].events.collect().reason == .cancelled)
    }

    @Test func limitsAreCheckedWhenSubmitted() throws {
        let scheduler = try Scheduler(engine: CPUDecodeEngine(model: Support.model), config: SchedulerConfig(maxContext: 10), detokenize: Support.text)
        let sampler = try Sampler()
        #expect(throws: SchedulerError.emptyPrompt) { try scheduler.submit(GenerationRequest(prompt: [], maxTokens: 1, sampler: sampler)) }
        #expect(throws: SchedulerError.maxTokensNotPositive(0)) { try scheduler.submit(GenerationRequest(prompt: [1], maxTokens: 0, sampler: sampler)) }
        #expect(throws: SchedulerError.contextExceeded(promptTokens: 4, maxTokens: 7, maxContext: 10)) {
            try scheduler.submit(GenerationRequest(prompt: [1, 2, 3, 4], maxTokens: 7, sampler: sampler))
        }
        #expect(throws: SchedulerError.contextExceeded(promptTokens: 1, maxTokens: .max, maxContext: 10)) {
            try scheduler.submit(GenerationRequest(prompt: [1], maxTokens: .max, sampler: sampler))
        }
        #expect(throws: SchedulerError.tokenOutOfRange(token: 256, vocabSize: 256)) {
            try scheduler.submit(GenerationRequest(prompt: [1, 256], maxTokens: 1, sampler: sampler))
        }
        #expect(throws: SchedulerError.emptyStopString) { try scheduler.submit(GenerationRequest(prompt: [1], maxTokens: 1, sampler: sampler, stopStrings: [""])) }
        #expect(throws: ConfigError.self) { try SchedulerConfig(maxBatch: 8, prefillChunk: 8, stepTokens: 10).validate() }
        #expect(throws: ConfigError.self) { try SchedulerConfig(maxBatch: 0).validate() }
        #expect(throws: ConfigError.self) { try SchedulerConfig(queueCapacity: -1).validate() }
        #expect(scheduler.status == Scheduler.Status(active: 0, queued: 0, finished: [:]))
    }

    @Test func droppingTheStreamFreesTheSlotAtTheNextStep() async throws {
        let engine = SteppedEngine()
        let scheduler = try Scheduler(engine: engine, config: SchedulerConfig(maxBatch: 2), detokenize: Support.text)
        var steps = engine.steps.makeAsyncIterator()
        let handle = try scheduler.submit(GenerationRequest(prompt: [72, 105], maxTokens: 100, sampler: Sampler(seed: 4)))
        let reader = Task { try await handle.events.collect() }
        _ = await steps.next()
        #expect(engine.inner.slotCount == 1)
        reader.cancel()  // the consumer goes away, as a disconnected client's does
        _ = try? await reader.value
        engine.allowStep()
        await scheduler.waitUntilIdle()
        #expect(engine.inner.slotCount == 0)
        #expect(scheduler.status.finished == [.cancelled: 1])
    }

    @Test func stopStringsAndStopTokensEndTheCompletion() async throws {
        let scheduler = try Scheduler(engine: CPUDecodeEngine(model: Support.model), config: SchedulerConfig(prefillChunk: 8), detokenize: Support.text)
        let sampler = try Sampler(temperature: 1, seed: 9)
        let prompt = Support.prompt(6, seed: 9)
        let full = try Support.reference(prompt: prompt, maxTokens: 60, sampler: sampler, prefillChunk: 8)
        // A stop string taken from the middle of the unstopped completion: the text ends just before its first
        // occurrence, found here by a plain byte search.
        let bytes = full.map { UInt8($0) }
        let start = (10..<(bytes.count - 2)).first { bytes[$0] >= 0x20 && bytes[$0] < 0x7F && bytes[$0 + 1] >= 0x20 && bytes[$0 + 1] < 0x7F }!
        let stop = String(decoding: bytes[start...(start + 1)], as: UTF8.self)
        let fullText = Array(Support.text(full).utf8), stopBytes = Array(stop.utf8)
        let cut = (0...(fullText.count - 2)).first { Array(fullText[$0..<($0 + 2)]) == stopBytes }!
        let stopped = try await scheduler.submit(GenerationRequest(prompt: prompt, maxTokens: 60, sampler: sampler, stopStrings: ["\u{1}never", stop])).events.collect()
        #expect(stopped.reason == .stop)
        #expect(stopped.text == String(decoding: fullText[..<cut], as: UTF8.self))
        #expect(stopped.tokens == Array(full.prefix(stopped.tokens.count)))

        // A stop token ends it too, and adds no text.
        let stopToken = full[7]
        let firstStop = full.firstIndex(of: stopToken)!
        let ended = try await scheduler.submit(GenerationRequest(prompt: prompt, maxTokens: 60, sampler: sampler, stopTokens: [stopToken])).events.collect()
        #expect(ended.reason == .stop && ended.usage?.completionTokens == firstStop + 1)
        #expect(ended.tokens == Array(full[..<firstStop]))
    }

    @Test func completionTextHoldsBackWhatMayStillChange() {
        var text = CompletionText(stopStrings: ["ab"], detokenize: ServeTestSupport.text)
        // 'a' may start "ab", the first byte of 'é' (C3 A9) is not a character yet.
        let pieces = [0x78, 0x61, 0x63, 0xC3, 0xA9, 0x61].map { text.append($0).text }
        #expect(pieces == ["x", "", "ac", "", "é", ""])
        #expect(text.finish() == "a")
        var stopping = CompletionText(stopStrings: ["ab", "b"], detokenize: ServeTestSupport.text)
        #expect(stopping.append(0x78) == ("x", false) && stopping.append(0x61) == ("", false))
        #expect(stopping.append(0x62) == ("", true))
    }
}
