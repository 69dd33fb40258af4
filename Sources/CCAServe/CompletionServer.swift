import CCA
import Hummingbird
import Logging

/// The HTTP server of `cca serve` on Hummingbird: `POST /v1/completions` (JSON or server-sent events),
/// `GET /v1/models` and `GET /health`, every error as OpenAI-style JSON.
public enum CompletionServer {
    /// Serves `service` on `host:port` (port 0: a free one) until the calling task is cancelled;
    /// `onListening` gets the port once connections are accepted. `logLevel`: what the server logs to
    /// standard error (connection errors are `.error`, its start `.info`).
    public static func run(_ service: CompletionService, host: String, port: Int, maxBodyBytes: Int, logLevel: Logger.Level = .error,
                           onListening: @escaping @Sendable (Int) async -> Void) async throws {
        var logger = Logger(label: "cca.serve")
        logger.logLevel = logLevel
        let app = Application(responder: Responder(service: service, maxBodyBytes: maxBodyBytes),
                              configuration: .init(address: .hostname(host, port: port), serverName: "cca"),
                              onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) }, logger: logger)
        try await app.run()
    }

    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let service: CompletionService
        let maxBodyBytes: Int

        /// Every route, and the methods it takes.
        static let routes: [String: HTTPRequest.Method] = ["/v1/completions": .post, "/v1/models": .get, "/health": .get]

        func respond(to request: Request, context: Context) async throws -> Response {
            do {
                let path = request.uri.path
                guard let method = Self.routes[path] else { throw APIError.notFound(path) }
                guard request.method == method else {
                    var response = Self.errorResponse(.methodNotAllowed(request.method.rawValue, path, allowed: method.rawValue))
                    response.headers[.allow] = method.rawValue
                    return response
                }
                switch path {
                case "/health": return json(service.health())
                case "/v1/models": return json(service.models())
                default: return try await complete(request)
                }
            } catch let error as APIError {
                return Self.errorResponse(error)
            }
        }

        private func complete(_ request: Request) async throws -> Response {
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
                throw APIError.bodyTooLarge(limit: maxBodyBytes)
            }
            var body: [UInt8] = []
            for try await buffer in request.body {
                guard buffer.readableBytes <= maxBodyBytes - body.count else { throw APIError.bodyTooLarge(limit: maxBodyBytes) }
                body += buffer.readableBytesView
            }
            let started = try service.start(body)
            guard started.request.stream else { return json(try await service.complete(started)) }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { [service] writer in
                                try await service.stream(started) { try await writer.write(ByteBuffer(bytes: $0)) }
                                try await writer.finish(nil)
                            })
        }

        private func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }

        private static func status(_ code: Int) -> HTTPResponse.Status {
            let known: [Int: HTTPResponse.Status] = [400: .badRequest, 404: .notFound, 405: .methodNotAllowed, 413: .contentTooLarge,
                                                     429: .tooManyRequests, 500: .internalServerError]
            return known[code] ?? HTTPResponse.Status(code: code)
        }

        static func errorResponse(_ error: APIError) -> Response {
            var headers: HTTPFields = [.contentType: "application/json"]
            // An unread body cannot be skipped reliably, so the connection closes after a refusal of its size.
            if error.status == 413 { headers[.connection] = "close" }
            return Response(status: status(error.status), headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: Responses.json(Responses.ErrorBody(error)))))
        }
    }
}
