import CCA

/// An error answer of the server: its HTTP status and the OpenAI-style JSON body
/// `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, CustomStringConvertible, Equatable, Sendable {
    public var status: Int
    public var message: String
    public var type: String
    /// The request field at fault, when one is.
    public var param: String?
    public var code: String

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String) {
        (self.status, self.message, self.type, self.param, self.code) = (status, message, type, param, code)
    }

    public var description: String { "\(status) \(code): \(message)" }

    static func invalidJSON(_ reason: String) -> APIError {
        APIError(status: 400, message: "the request body is not valid JSON: \(reason)", code: "invalid_json")
    }

    static func invalidValue(_ param: String, _ message: String) -> APIError {
        APIError(status: 400, message: message, param: param, code: "invalid_value")
    }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: 413, message: "the request body is larger than the server's limit of \(limit) bytes; send a shorter prompt",
                 code: "request_too_large")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: 404, message: "no endpoint \(path); the server answers POST /v1/completions, GET /v1/models and GET /health",
                 code: "not_found")
    }

    static func methodNotAllowed(_ method: String, _ path: String, allowed: String) -> APIError {
        APIError(status: 405, message: "\(path) does not accept \(method); use \(allowed)", code: "method_not_allowed")
    }

    static func modelNotFound(_ model: String, served: String) -> APIError {
        APIError(status: 404, message: "the model '\(model)' is not served here; this server serves '\(served)'", param: "model",
                 code: "model_not_found")
    }

    /// A refusal of the scheduler: a full queue is 429, the rest are the request's fault.
    init(_ error: SchedulerError) {
        switch error {
        case .queueFull: self.init(status: 429, message: error.description, type: "rate_limit_error", code: "queue_full")
        case .contextExceeded: self.init(status: 400, message: error.description, param: "max_tokens", code: "context_length_exceeded")
        case .maxTokensNotPositive: self.init(status: 400, message: error.description, param: "max_tokens", code: "invalid_value")
        case .emptyStopString: self.init(status: 400, message: error.description, param: "stop", code: "invalid_value")
        case .emptyPrompt, .tokenOutOfRange: self.init(status: 400, message: error.description, param: "prompt", code: "invalid_value")
        }
    }

    static func server(_ error: any Error) -> APIError {
        APIError(status: 500, message: "generation failed: \(error)", type: "server_error", code: "internal_error")
    }
}
