#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON bodies the server writes, in OpenAI's shapes (snake_case keys).
enum Responses {
    /// A whole completion, or one chunk of a streamed one (no usage, `finish_reason` null until the last).
    struct Completion: Encodable {
        var id: String
        var object = "text_completion"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: Usage?
    }

    struct Choice: Encodable {
        var text: String
        var index = 0
        var finishReason: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(text, forKey: .text)
            try container.encode(index, forKey: .index)
            try container.encodeNil(forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }

        enum CodingKeys: String, CodingKey { case text, index, logprobs, finishReason }
    }

    struct Usage: Encodable {
        var promptTokens: Int
        var completionTokens: Int
        var totalTokens: Int
    }

    struct ModelList: Encodable {
        var object = "list"
        var data: [Model]
    }

    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "cca"
    }

    struct Health: Encodable {
        var status = "ok"
        var model: String
        var active: Int
        var queued: Int
        var maxBatch: Int
        var queueCapacity: Int
        /// Whether a completion is the same whatever else is in the batch (``DecodeEngine/isBatchInvariant``).
        var batchInvariant: Bool
    }

    struct ErrorBody: Encodable {
        var error: Detail

        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }

        init(_ error: APIError) { self.error = Detail(message: error.message, type: error.type, param: error.param, code: error.code) }
    }

    /// `value` as one line of JSON.
    static func json(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value here is made of strings, integers and optionals of them, which always encode.
        return Array(try! encoder.encode(value))
    }
}
