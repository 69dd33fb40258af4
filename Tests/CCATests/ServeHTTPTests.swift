import CCA
import CCAServe
import Foundation
import Testing

/// `cca serve`'s HTTP server, driven by real HTTP clients over loopback: answers are read with Foundation's
/// `JSONSerialization` (not the encoder that wrote them) and completions compared with the plain reference
/// decoder of ``ServeTestSupport``.
@Suite struct ServeHTTPTests {
    typealias Support = ServeTestSupport

    /// A server on a free port over a fresh CPU engine.
    struct Server {
        let port: Int
        let scheduler: Scheduler
        let engine: CPUDecodeEngine
        static let modelID = "tiny-test"
        static let prefillChunk = 16

        /// A request on a new connection, answered in full: status, headers and the body as JSON.
        func call(_ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = [:]) async throws
            -> (status: Int, headers: [String: String], json: [String: Any]) {
            let port = port
            let (head, bytes) = try await HTTPTestClient.run {
                let client = try HTTPTestClient(port: port)
                try client.request(method, path, body: body, headers: headers)
                return try client.readResponse()
            }
            let json = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            return (head.status, head.headers, try #require(json, "the body is not a JSON object: \(String(decoding: bytes, as: UTF8.self))"))
        }

        func post(_ json: String) async throws -> (status: Int, headers: [String: String], json: [String: Any]) {
            try await call("POST", "/v1/completions", body: Array(json.utf8))
        }
    }

    static func withServer(maxBatch: Int = 8, queue: Int = 8, maxTokens: Int = 64, maxBodyBytes: Int = 4096,
                           _ body: (Server) async throws -> Void) async throws {
        let engine = CPUDecodeEngine(model: Support.model)
        let config = SchedulerConfig(maxBatch: maxBatch, queueCapacity: queue, maxContext: 2048, prefillChunk: Server.prefillChunk)
        let scheduler = try Scheduler(engine: engine, config: config, detokenize: TextTokens.bytes.decode)
        let service = CompletionService(scheduler: scheduler, modelID: Server.modelID, maxTokens: maxTokens)
        let (ports, listening) = AsyncStream<Int>.makeStream()
        let server = Task {
            // Cancelling the server at the end is its normal stop here, not an error worth a log line.
            try await CompletionServer.run(service, host: "127.0.0.1", port: 0, maxBodyBytes: maxBodyBytes, logLevel: .critical) { listening.yield($0) }
        }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do {
            try await body(Server(port: port, scheduler: scheduler, engine: engine))
        } catch {
            server.cancel()
            throw error
        }
        server.cancel()
        _ = try? await server.value
    }

    /// The text the reference decoder gives for a request of this server.
    static func expectedText(prompt: String, maxTokens: Int, temperature: Float, seed: UInt64) throws -> String {
        let sampler = try Sampler(temperature: temperature, seed: seed)
        return Support.text(try Support.reference(prompt: TextTokens.bytes.encode(prompt), maxTokens: maxTokens, sampler: sampler,
                                                  prefillChunk: Server.prefillChunk))
    }

    static func requestJSON(prompt: String, maxTokens: Int, temperature: Float, seed: UInt64, stream: Bool) -> String {
        let quoted = String(data: try! JSONSerialization.data(withJSONObject: [prompt], options: [.fragmentsAllowed]), encoding: .utf8)!.dropFirst().dropLast()
        return #"{"model": "tiny-test", "prompt": \#(quoted), "max_tokens": \#(maxTokens), "temperature": \#(temperature), "seed": \#(seed), "stream": \#(stream)}"#
    }

    /// The `data:` payloads of a server-sent event stream, read chunk by chunk; `hangUpAfter` closes the
    /// connection after that many events.
    static func streamEvents(port: Int, body: String, hangUpAfter: Int? = nil) async throws -> (head: HTTPTestClient.Head, events: [String]) {
        try await HTTPTestClient.run {
            let client = try HTTPTestClient(port: port)
            try client.request("POST", "/v1/completions", body: Array(body.utf8))
            let head = try client.readHead()
            var text = "", events: [String] = []
            while let chunk = try client.readChunk() {
                text += String(decoding: chunk, as: UTF8.self)
                while let end = text.range(of: "\n\n") {
                    events.append(String(text[..<end.lowerBound]))
                    text = String(text[end.upperBound...])
                }
                if let hangUpAfter, events.count >= hangUpAfter {
                    client.hangUp()
                    break
                }
            }
            return (head, events)
        }
    }

    static func error(_ json: [String: Any]) -> (message: String?, type: String?, code: String?, param: String?) {
        let error = json["error"] as? [String: Any]
        return (error?["message"] as? String, error?["type"] as? String, error?["code"] as? String, error?["param"] as? String)
    }

    @Test func modelsAndHealth() async throws {
        try await Self.withServer { server in
            let models = try await server.call("GET", "/v1/models")
            #expect(models.status == 200 && models.headers["content-type"] == "application/json")
            let data = try #require(models.json["data"] as? [[String: Any]])
            #expect(models.json["object"] as? String == "list" && data.count == 1)
            #expect(data.first?["id"] as? String == Server.modelID && data.first?["object"] as? String == "model")
            let health = try await server.call("GET", "/health")
            #expect(health.status == 200 && health.json["status"] as? String == "ok")
            #expect(health.json["active"] as? Int == 0 && health.json["queued"] as? Int == 0 && health.json["max_batch"] as? Int == 8)
        }
    }

    @Test func unknownPathsAndMethodsGetJSONErrors() async throws {
        try await Self.withServer { server in
            let missing = try await server.call("GET", "/v2/engines")
            #expect(missing.status == 404 && Self.error(missing.json).code == "not_found")
            let wrongMethod = try await server.call("GET", "/v1/completions")
            #expect(wrongMethod.status == 405 && Self.error(wrongMethod.json).code == "method_not_allowed")
            #expect(wrongMethod.headers["allow"] == "POST")
            #expect(try await server.call("POST", "/health").status == 405)
        }
    }

    @Test func badRequestsGetJSONErrorsNamingTheField() async throws {
        let cases: [(body: String, status: Int, code: String, param: String?)] = [
            ("{\"prompt\": \"a\",", 400, "invalid_json", nil),
            ("[1, 2]", 400, "invalid_json", nil),
            ("{}", 400, "invalid_value", "prompt"),
            (#"{"prompt": 5}"#, 400, "invalid_value", "prompt"),
            (#"{"prompt": ""}"#, 400, "invalid_value", "prompt"),
            (#"{"prompt": "a", "temperature": "hot"}"#, 400, "invalid_value", "temperature"),
            (#"{"prompt": "a", "temperature": -1}"#, 400, "invalid_value", "temperature"),
            (#"{"prompt": "a", "top_p": 2}"#, 400, "invalid_value", "top_p"),
            (#"{"prompt": "a", "top_k": 0}"#, 400, "invalid_value", "top_k"),
            (#"{"prompt": "a", "n": 2}"#, 400, "invalid_value", "n"),
            (#"{"prompt": "a", "max_tokens": 0}"#, 400, "invalid_value", "max_tokens"),
            (#"{"prompt": "a", "max_tokens": 65}"#, 400, "invalid_value", "max_tokens"),
            (#"{"prompt": "a", "max_tokens": 1e30}"#, 400, "invalid_value", "max_tokens"),
            (#"{"prompt": "a", "seed": -1}"#, 400, "invalid_value", "seed"),
            (#"{"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}"#, 400, "invalid_value", "stop"),
            (#"{"prompt": "a", "stop": [""]}"#, 400, "invalid_value", "stop"),
            (#"{"prompt": "a", "stream": "yes"}"#, 400, "invalid_value", "stream"),
            (#"{"prompt": "a", "model": "gpt-4"}"#, 404, "model_not_found", "model"),
        ]
        try await Self.withServer { server in
            for (body, status, code, param) in cases {
                let answer = try await server.post(body)
                let error = Self.error(answer.json)
                #expect(answer.status == status, "\(body)")
                #expect(error.code == code && error.param == param, "\(body): \(answer.json)")
                #expect(error.message?.isEmpty == false && error.type != nil, "\(body)")
            }
            // Bytes that are not UTF-8 cannot be JSON text.
            let invalid = try await server.call("POST", "/v1/completions", body: Array(#"{"prompt": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
            #expect(invalid.status == 400 && Self.error(invalid.json).code == "invalid_json")
            #expect(server.scheduler.status.finished.isEmpty, "no refused request reached the model")
        }
    }

    @Test func oversizeBodiesGet413() async throws {
        try await Self.withServer(maxBodyBytes: 64) { server in
            let body = Self.requestJSON(prompt: String(repeating: "x", count: 80), maxTokens: 1, temperature: 0, seed: 0, stream: false)
            let declared = try await server.post(body)
            #expect(declared.status == 413 && Self.error(declared.json).code == "request_too_large")
            // Chunked, so no length is declared: the server counts as it reads.
            let bytes = Array(body.utf8)
            let chunked = String(bytes.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
            let streamed = try await server.call("POST", "/v1/completions", body: Array(chunked.utf8), headers: ["Transfer-Encoding": "chunked"])
            #expect(streamed.status == 413 && Self.error(streamed.json).code == "request_too_large")
        }
    }

    @Test func aCompletionMatchesTheReferenceDecoder() async throws {
        try await Self.withServer { server in
            let answer = try await server.post(Self.requestJSON(prompt: "Hello, é", maxTokens: 12, temperature: 0.8, seed: 5, stream: false))
            #expect(answer.status == 200)
            let choice = try #require((answer.json["choices"] as? [[String: Any]])?.first)
            #expect(choice["text"] as? String == (try Self.expectedText(prompt: "Hello, é", maxTokens: 12, temperature: 0.8, seed: 5)))
            #expect(choice["finish_reason"] as? String == "length" && choice["index"] as? Int == 0)
            #expect(answer.json["object"] as? String == "text_completion" && answer.json["model"] as? String == Server.modelID)
            let usage = try #require(answer.json["usage"] as? [String: Int])
            #expect(usage == ["prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21])
        }
    }

    @Test func concurrentStreamsEachGetTheirOwnTokens() async throws {
        let requests = (0..<8).map { (prompt: "prompt \($0): " + String(repeating: "ab", count: $0 * 5), maxTokens: 20 + $0, seed: UInt64(40 + $0)) }
        let expected = try requests.map { try Self.expectedText(prompt: $0.prompt, maxTokens: $0.maxTokens, temperature: 1, seed: $0.seed) }
        #expect(Set(expected).count == requests.count)
        try await Self.withServer { server in
            let streams = try await withThrowingTaskGroup(of: (Int, HTTPTestClient.Head, [String]).self) { group in
                for (index, request) in requests.enumerated() {
                    let body = Self.requestJSON(prompt: request.prompt, maxTokens: request.maxTokens, temperature: 1, seed: request.seed, stream: true)
                    group.addTask {
                        let (head, events) = try await Self.streamEvents(port: server.port, body: body)
                        return (index, head, events)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = ($1.1, $1.2) }
            }
            for (index, text) in expected.enumerated() {
                let (head, events) = try #require(streams[index])
                #expect(head.status == 200 && head.headers["content-type"] == "text/event-stream")
                #expect(events.last == "data: [DONE]")
                let chunks = try events.dropLast().map { event in
                    #expect(event.hasPrefix("data: "))
                    let json = try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any]
                    return try #require((json?["choices"] as? [[String: Any]])?.first)
                }
                #expect(chunks.map { $0["text"] as? String ?? "<missing>" }.joined() == text, "stream \(index)")
                #expect(chunks.last?["finish_reason"] as? String == "length")
                #expect(chunks.dropLast().allSatisfy { $0["finish_reason"] is NSNull })
            }
        }
    }

    @Test func aClientThatHangsUpMidStreamFreesItsSlot() async throws {
        try await Self.withServer(maxTokens: 2000) { server in
            let body = Self.requestJSON(prompt: "bye", maxTokens: 2000, temperature: 1, seed: 1, stream: true)
            let (head, events) = try await Self.streamEvents(port: server.port, body: body, hangUpAfter: 2)
            #expect(head.status == 200 && events.count == 2)
            await server.scheduler.waitUntilIdle()
            let status = server.scheduler.status
            #expect(status.active == 0 && status.queued == 0 && status.finished == [.cancelled: 1])
            #expect(server.engine.slotCount == 0)
        }
    }

    @Test func aFullQueueAnswers429() async throws {
        try await Self.withServer(maxBatch: 1, queue: 1, maxTokens: 2000) { server in
            // One request runs (a long stream, held open), one waits, and the next is refused.
            let port = server.port
            let running = try await HTTPTestClient.run {
                let client = try HTTPTestClient(port: port)
                try client.request("POST", "/v1/completions", body: Array(Self.requestJSON(prompt: "run", maxTokens: 2000, temperature: 1, seed: 2, stream: true).utf8))
                _ = try client.readHead()
                _ = try client.readChunk()
                return client
            }
            let waitingBody = Self.requestJSON(prompt: "wait", maxTokens: 4, temperature: 1, seed: 3, stream: false)
            async let waiting = server.post(waitingBody)
            while server.scheduler.status.queued == 0 { try await Task.sleep(for: .milliseconds(1)) }
            let refused = try await server.post(Self.requestJSON(prompt: "no room", maxTokens: 4, temperature: 1, seed: 4, stream: false))
            #expect(refused.status == 429 && Self.error(refused.json).code == "queue_full")
            #expect(Self.error(refused.json).type == "rate_limit_error")
            running.hangUp()
            let served = try await waiting
            #expect(served.status == 200)
            let text = (served.json["choices"] as? [[String: Any]])?.first?["text"] as? String
            #expect(text == (try Self.expectedText(prompt: "wait", maxTokens: 4, temperature: 1, seed: 3)))
        }
    }
}
