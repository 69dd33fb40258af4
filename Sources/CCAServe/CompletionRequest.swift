#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The body of `POST /v1/completions`: the OpenAI fields this server implements, read strictly. A field it
/// does not implement (`n`, `logprobs`, `echo`, ...) is refused rather than ignored, because ignoring it
/// would silently answer another question than the one asked.
struct CompletionRequest: Decodable {
    var model: String?
    var prompt: String
    var maxTokens: Int?
    var temperature: Float?
    var topP: Float?
    /// Not in OpenAI's API; vLLM and llama.cpp take it under this name.
    var topK: Int?
    var seed: UInt64?
    var stop: [String]
    var stream: Bool

    /// Fields read, by their JSON names; `user` is accepted and unused, as it only labels the caller.
    static let fields: Set<String> = ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "user"]

    /// The request in `body`, or the 400 answer that says what is wrong with it.
    static func parse(_ body: [UInt8]) throws(APIError) -> CompletionRequest {
        // JSON text is UTF-8; decoding replaces invalid bytes, so only valid text comes back unchanged.
        guard Array(String(decoding: body, as: UTF8.self).utf8) == body else { throw .invalidJSON("the body is not UTF-8 text") }
        do {
            return try JSONDecoder().decode(CompletionRequest.self, from: Data(body))
        } catch let error as APIError {
            throw error
        } catch DecodingError.typeMismatch {
            throw .invalidJSON("expected an object of the request's fields")
        } catch let DecodingError.dataCorrupted(context) {
            throw .invalidJSON(context.underlyingError.map { "\($0)" } ?? context.debugDescription)
        } catch {
            throw .invalidJSON("\(error)")
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !Self.fields.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw APIError.invalidValue(unknown[0], "unsupported field\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")); this server implements \(Self.fields.sorted().joined(separator: ", "))")
        }
        /// The field `name` when present and not null; any decoding failure (wrong type, a number out of
        /// range) becomes the 400 answer naming the field and what it must be.
        func field<T: Decodable>(_ name: String, _ expected: String) throws -> T? {
            do { return try container.decodeIfPresent(T.self, forKey: Key(name)) } catch {
                throw APIError.invalidValue(name, "'\(name)' must be \(expected)")
            }
        }
        guard let prompt: String = try field("prompt", "a string") else {
            throw APIError.invalidValue("prompt", "'prompt' is missing; give the text to complete")
        }
        self.prompt = prompt
        model = try field("model", "a string")
        maxTokens = try field("max_tokens", "an integer")
        temperature = try field("temperature", "a number")
        topP = try field("top_p", "a number")
        topK = try field("top_k", "an integer")
        seed = try field("seed", "an integer from 0 to 18446744073709551615")
        stream = try field("stream", "true or false") ?? false
        let _: String? = try field("user", "a string")
        // OpenAI takes one stop string or a list of up to four.
        if let one: String = try? field("stop", "") {
            stop = [one]
        } else {
            let list: [String]? = try field("stop", "a string or a list of at most 4 strings")
            guard (list?.count ?? 0) <= 4 else { throw APIError.invalidValue("stop", "'stop' must be a string or a list of at most 4 strings") }
            stop = list ?? []
        }
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

