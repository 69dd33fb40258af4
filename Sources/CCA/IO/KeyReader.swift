/// Typed access to the keys of a JSON config object, with defaults for missing keys: how `cca forward`'s
/// layer configs and Hugging Face `config.json` files are read.
struct KeyReader {
    let keys: [String: JSONValue]
    /// The file (or text) the object came from, for error messages.
    let source: String

    init(keys: [String: JSONValue], source: String) {
        (self.keys, self.source) = (keys, source)
    }

    /// The object that `jsonBytes` must hold; throws ``ConfigFileError`` for text that is not UTF-8 or JSON,
    /// for anything but an object, and for a key given twice.
    init(jsonBytes: [UInt8], source: String) throws {
        guard String(validating: jsonBytes, as: UTF8.self) != nil else {
            throw ConfigFileError.notJSON(path: source, reason: "the file is not UTF-8 text")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(jsonBytes) } catch {
            throw ConfigFileError.notJSON(path: source, reason: "\(error.message) at byte \(error.offset)")
        }
        try self.init(json, source: source)
    }

    /// The members of `value`, which must be an object without repeated keys.
    init(_ value: JSONValue, source: String) throws {
        guard case let .object(members) = value else { throw ConfigFileError.notAnObject(path: source) }
        var keys: [String: JSONValue] = [:]
        for (key, value) in members {
            guard keys.updateValue(value, forKey: key) == nil else { throw ConfigFileError.duplicateKey(path: source, key: key) }
        }
        self.init(keys: keys, source: source)
    }

    /// The value of `key`, or nil when it is missing or `null` (how Hugging Face configs write "unset").
    func value(_ key: String) -> JSONValue? {
        if case .null? = keys[key] { return nil }
        return keys[key]
    }

    func number(_ key: String, default fallback: Double) throws -> Double {
        try optionalNumber(key) ?? fallback
    }

    func optionalNumber(_ key: String) throws -> Double? {
        try value(key).map { try number($0, key: key) }
    }

    func integer(_ key: String, default fallback: Int) throws -> Int {
        try optionalInteger(key) ?? fallback
    }

    func optionalInteger(_ key: String) throws -> Int? {
        try value(key).map { try wholeNumber($0, key: key) }
    }

    /// A whole number or a list of them (as `eos_token_id` may be written); empty when missing.
    func integers(_ key: String) throws -> [Int] {
        guard let value = value(key) else { return [] }
        guard case let .array(elements) = value else { return [try wholeNumber(value, key: key)] }
        return try elements.map { try wholeNumber($0, key: key) }
    }

    private func number(_ value: JSONValue, key: String) throws -> Double {
        switch value {
        case let .integer(value): return Double(value)
        case let .number(text):
            if let value = Double(text), value.isFinite { return value }
        default: break
        }
        throw ConfigFileError.wrongType(path: source, key: key, expected: "a number")
    }

    private func wholeNumber(_ value: JSONValue, key: String) throws -> Int {
        let number = try number(value, key: key)
        guard number.rounded() == number, abs(number) < 1e15 else {
            throw ConfigFileError.wrongType(path: source, key: key, expected: "a whole number")
        }
        return Int(number)
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let value = value(key) else { return fallback }
        guard case let .string(text) = value else { throw ConfigFileError.wrongType(path: source, key: key, expected: "a string") }
        return text
    }

    /// A list of strings, or nil when missing.
    func strings(_ key: String) throws -> [String]? {
        guard let value = value(key) else { return nil }
        guard case let .array(elements) = value else {
            throw ConfigFileError.wrongType(path: source, key: key, expected: "a list of strings")
        }
        return try elements.map { element in
            guard case let .string(text) = element else {
                throw ConfigFileError.wrongType(path: source, key: key, expected: "a list of strings")
            }
            return text
        }
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = value(key) else { return fallback }
        guard case let .bool(flag) = value else { throw ConfigFileError.wrongType(path: source, key: key, expected: "true or false") }
        return flag
    }

    /// The nested object under `key`, or nil when missing; its errors name it as `source: key`.
    func object(_ key: String) throws -> KeyReader? {
        guard let value = value(key) else { return nil }
        guard case .object = value else { throw ConfigFileError.wrongType(path: source, key: key, expected: "an object") }
        return try KeyReader(value, source: "\(source): \(key)")
    }
}
