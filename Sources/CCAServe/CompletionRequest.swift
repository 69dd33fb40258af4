#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The body of `POST /v1/completions`: the OpenAI fields this server implements, read strictly. A field it
/// does not implement (`n`, `logprobs`, `echo`, ...) is refused rather than ignored, because ignoring it
/// would silently answer another question than the one asked.
struct CompletionRequest: Decodable, Equatable {
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
        do {
            return try JSONDecoder().decode(CompletionRequest.self, from: Data(body))
        } catch let error as APIError {
            throw error
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw .invalidJSON("expected an object of the request's fields")
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            throw .invalidValue(context.fieldName, "'\(context.fieldName)' must be \(describe(type))")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .invalidValue(context.fieldName, "'\(context.fieldName)' is not a valid value: \(context.debugDescription)")
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
        guard container.contains(Key("prompt")), !(try container.decodeNil(forKey: Key("prompt"))) else {
            throw APIError.invalidValue("prompt", "'prompt' is missing; give the text to complete")
        }
        model = try container.decodeIfPresent(String.self, forKey: Key("model"))
        prompt = try container.decode(String.self, forKey: Key("prompt"))
        maxTokens = try container.decodeIfPresent(Int.self, forKey: Key("max_tokens"))
        temperature = try container.decodeIfPresent(Float.self, forKey: Key("temperature"))
        topP = try container.decodeIfPresent(Float.self, forKey: Key("top_p"))
        topK = try container.decodeIfPresent(Int.self, forKey: Key("top_k"))
        seed = try container.decodeIfPresent(UInt64.self, forKey: Key("seed"))
        stream = try container.decodeIfPresent(Bool.self, forKey: Key("stream")) ?? false
        _ = try container.decodeIfPresent(String.self, forKey: Key("user"))
        // OpenAI takes one stop string or a list of up to four.
        let stopKey = Key("stop")
        if try !container.contains(stopKey) || container.decodeNil(forKey: stopKey) {
            stop = []
        } else if let one = try? container.decode(String.self, forKey: stopKey) {
            stop = [one]
        } else if let list = try? container.decode([String].self, forKey: stopKey), list.count <= 4 {
            stop = list
        } else {
            throw APIError.invalidValue("stop", "'stop' must be a string or a list of at most 4 strings")
        }
    }

    init(model: String? = nil, prompt: String, maxTokens: Int? = nil, temperature: Float? = nil, topP: Float? = nil,
         topK: Int? = nil, seed: UInt64? = nil, stop: [String] = [], stream: Bool = false) {
        (self.model, self.prompt, self.maxTokens, self.temperature, self.topP) = (model, prompt, maxTokens, temperature, topP)
        (self.topK, self.seed, self.stop, self.stream) = (topK, seed, stop, stream)
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    private static func describe(_ type: Any.Type) -> String {
        if type == String.self { return "a string" }
        if type == Bool.self { return "true or false" }
        if type == Float.self { return "a number" }
        return "an integer"
    }
}

private extension DecodingError.Context {
    /// The JSON name of the field at fault (`stop[2]` for an element of a list).
    var fieldName: String {
        codingPath.enumerated().map { index, key in key.intValue.map { "[\($0)]" } ?? (index == 0 ? "" : ".") + key.stringValue }.joined()
    }
}
