/// A JSON object of a tokenizer file, read field by field with errors that name the field's path.
///
/// Required fields are required as `tokenizers` requires them; optional ones default as it defaults them.
struct TokenizerJSONObject {
    let members: [(key: String, value: JSONValue)]
    /// Where the object sits in the file, e.g. `pre_tokenizer.pretokenizers[0]`.
    let field: String

    init(_ value: JSONValue, field: String) throws(TokenizerError) {
        guard case let .object(members) = value else { throw .malformed(field: field, reason: "must be an object, not \(value.kindName)") }
        (self.members, self.field) = (members, field)
    }

    /// The value of `key`, nil when absent (a JSON null is returned as `.null`).
    subscript(key: String) -> JSONValue? { members.first(where: { $0.key == key })?.value }

    // Members by index: iterating `members` itself inside a typed-throws initializer makes Swift 6.3 fail
    // with "circular reference" through `JSONValue`.
    var count: Int { members.count }
    func key(at index: Int) -> String { members[index].key }
    func value(at index: Int) -> JSONValue { members[index].value }

    private func path(_ key: String) -> String { "\(field).\(key)" }

    /// The component's `type` field.
    func type() throws(TokenizerError) -> String { try string("type") }

    func string(_ key: String) throws(TokenizerError) -> String {
        guard let value = self[key] else { throw .malformed(field: path(key), reason: "is missing") }
        guard case let .string(text) = value else { throw .malformed(field: path(key), reason: "must be a string, not \(value.kindName)") }
        return text
    }

    /// A string field that may be absent or null.
    func optionalString(_ key: String) throws(TokenizerError) -> String? {
        guard let value = self[key], !value.isNull else { return nil }
        return try string(key)
    }

    /// A boolean; `default` (when given) stands in for an absent or null field.
    func bool(_ key: String, default fallback: Bool? = nil) throws(TokenizerError) -> Bool {
        switch self[key] {
        case let .bool(value)?: return value
        case nil, .null?:
            guard let fallback else { throw .malformed(field: path(key), reason: "is missing") }
            return fallback
        case let value?: throw .malformed(field: path(key), reason: "must be true or false, not \(value.kindName)")
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int> = 0...Int(Int32.max)) throws(TokenizerError) -> Int {
        guard let value = self[key] else { throw .malformed(field: path(key), reason: "is missing") }
        return try Self.integer(value, field: path(key), in: range)
    }

    static func integer(_ value: JSONValue, field: String, in range: ClosedRange<Int> = 0...Int(Int32.max)) throws(TokenizerError) -> Int {
        guard case let .integer(number) = value, range.contains(number) else {
            throw .malformed(field: field, reason: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func array(_ key: String) throws(TokenizerError) -> [JSONValue] {
        guard let value = self[key] else { throw .malformed(field: path(key), reason: "is missing") }
        guard case let .array(elements) = value else { throw .malformed(field: path(key), reason: "must be an array, not \(value.kindName)") }
        return elements
    }

    /// Each element of the array `key` read by `read(element, its field path)`, e.g. a Sequence's parts.
    func elements<Element>(_ key: String, _ read: (JSONValue, String) throws(TokenizerError) -> Element) throws(TokenizerError) -> [Element] {
        var result: [Element] = []
        for (index, value) in try array(key).enumerated() { result.append(try read(value, "\(path(key))[\(index)]")) }
        return result
    }

    func object(_ key: String) throws(TokenizerError) -> TokenizerJSONObject {
        guard let value = self[key] else { throw .malformed(field: path(key), reason: "is missing") }
        return try TokenizerJSONObject(value, field: path(key))
    }

    /// A single character (Rust `char`) given as a string.
    func character(_ key: String) throws(TokenizerError) -> [UInt8] {
        let text = try string(key)
        guard text.unicodeScalars.count == 1 else { throw .malformed(field: path(key), reason: "must be exactly one character") }
        return Array(text.utf8)
    }

    /// A `{"String": literal}` or `{"Regex": pattern}` field, compiled.
    func pattern(_ key: String) throws(TokenizerError) -> RegexProgram {
        let object = try self.object(key)
        if let literal = object["String"] {
            guard case let .string(text) = literal else { throw .malformed(field: path(key) + ".String", reason: "must be a string") }
            return RegexProgram(literal: text)
        }
        return try RegexProgram(pattern: try object.string("Regex"))
    }
}

extension JSONValue {
    var stringValue: String? {
        switch self {
        case let .string(text): return text
        default: return nil
        }
    }

    var numberValue: Double? {
        switch self {
        case let .integer(value): return Double(value)
        case let .number(text): return Double(text)
        default: return nil
        }
    }

    var arrayValue: [JSONValue]? {
        switch self {
        case let .array(elements): return elements
        default: return nil
        }
    }

    var isNull: Bool {
        switch self {
        case .null: return true
        default: return false
        }
    }
}
