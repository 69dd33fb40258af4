/// Reading and writing `Codable` values as JSON: the package's one JSON path (checkpoints, config files).
///
/// Decoding is strict: the bytes must be UTF-8 JSON, object keys unique, numbers in range of the field's
/// type, and (by default) every member of every object must be read by the type, so a misspelt key is an
/// error instead of a silently ignored setting. Encoding writes sorted keys, indented, and refuses NaN and
/// infinity (which JSON cannot hold), naming the key path of the value.
public enum JSON {
    /// What decoding does with object members that the type never reads.
    public enum UnknownKeys: Sendable {
        /// Throw ``JSONError/unknownKeys(source:paths:)`` listing them all.
        case reject
        /// Leave them unread.
        case ignore
    }

    /// Decodes a `T` from JSON text; `source` names the text in errors (a file path, say).
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], source: String = "JSON", unknownKeys: UnknownKeys = .reject
    ) throws(JSONError) -> T {
        let (value, unused) = try decodeReportingUnusedKeys(type, from: bytes, source: source)
        if unknownKeys == .reject, !unused.isEmpty { throw .unknownKeys(source: source, paths: unused) }
        return value
    }

    /// Decodes a `T` and lists the key paths (`model.hidden_size`, `history[2].loss`) of every object
    /// member that `T` did not read, in document order.
    public static func decodeReportingUnusedKeys<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], source: String = "JSON"
    ) throws(JSONError) -> (value: T, unusedKeys: [String]) {
        let json = try parse(bytes, source: source)
        return try JSONValueDecoder.decode(type, from: json, source: source)
    }

    /// `value` as JSON text: keys sorted, two-space indentation, a final newline.
    public static func encode<T: Encodable>(_ value: T) throws(JSONError) -> [UInt8] {
        Array(try JSONValueEncoder.encode(value).prettyText().utf8)
    }

    /// Parses UTF-8 JSON text into a value tree.
    static func parse(_ bytes: [UInt8], source: String) throws(JSONError) -> JSONValue {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .notUTF8(source: source) }
        do { return try JSONParser.parse(bytes) } catch { throw .syntax(source: source, offset: error.offset, message: error.message) }
    }
}

/// JSON that cannot be decoded as the type asked for, or a value that cannot be written as JSON.
///
/// Paths name the value as `key.key[index].key`; `source` is what the caller called the text.
public enum JSONError: Error, CustomStringConvertible, Equatable {
    case notUTF8(source: String)
    case syntax(source: String, offset: Int, message: String)
    case wrongType(source: String, path: String, expected: String, found: String)
    case missingKey(source: String, path: String)
    case duplicateKey(source: String, path: String)
    case outOfRange(source: String, path: String, number: String, type: String)
    case unknownKeys(source: String, paths: [String])
    /// The type refused the value (an unknown enum case, say).
    case invalidValue(source: String, path: String, reason: String)
    /// Encoding met NaN or an infinity, which JSON cannot represent.
    case notFinite(path: String, value: String)

    public var description: String {
        switch self {
        case let .notUTF8(source): "\(source) is not UTF-8 text"
        case let .syntax(source, offset, message): "\(source) is not valid JSON: \(message) (at byte \(offset))"
        case let .wrongType(source, path, expected, found): "\(source): '\(path)' must be \(expected), but it is \(found)"
        case let .missingKey(source, path): "\(source): the key '\(path)' is missing"
        case let .duplicateKey(source, path): "\(source): the key '\(path)' appears twice"
        case let .outOfRange(source, path, number, type): "\(source): '\(path)' = \(number) does not fit in \(type)"
        case let .unknownKeys(source, paths):
            "\(source): unknown key\(paths.count == 1 ? "" : "s") \(paths.map { "'\($0)'" }.joined(separator: ", ")); check the spelling, or remove \(paths.count == 1 ? "it" : "them")"
        case let .invalidValue(source, path, reason): "\(source): '\(path)' is invalid: \(reason)"
        case let .notFinite(path, value): "'\(path)' is \(value), which JSON cannot hold; only finite numbers can be written"
        }
    }
}

/// A parsed JSON value: what safetensors headers, config files and checkpoints are read into.
///
/// A hand-written parser instead of Foundation: `JSONSerialization` is missing from FoundationEssentials and
/// full Foundation would multiply the binary size. Parsing untrusted bytes here also lets every limit
/// (depth, integer range) be explicit.
public enum JSONValue: Sendable {
    /// Members in file order, duplicates kept, so that the caller can reject duplicate names.
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    /// A number written without fraction or exponent that fits in `Int`.
    case integer(Int)
    /// Any other number, kept as written so that error messages can quote it.
    case number(String)
    case bool(Bool)
    case null

    /// How the value's kind reads in an error message.
    var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// Malformed JSON, with the byte offset where parsing stopped.
struct JSONSyntaxError: Error {
    let offset: Int
    let message: String
}

/// A strict RFC 8259 parser over UTF-8 bytes that are already known to be valid UTF-8.
struct JSONParser {
    /// Deeper nesting than any header needs (3 levels) is refused, so hostile input cannot exhaust the stack.
    static let maxDepth = 32

    private let bytes: [UInt8]
    private var index = 0

    /// Parses exactly one value surrounded by optional whitespace.
    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ message: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, message: message) }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(JSONSyntaxError) {
        guard current == byte else { throw error("expected \(what)") }
        index += 1
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard let byte = current else { throw error("unexpected end of text, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        default: throw error("unexpected character, expected a value")
        }
    }

    private mutating func parseLiteral(_ word: String) throws(JSONSyntaxError) {
        for byte in word.utf8 {
            guard current == byte else { throw error("invalid literal, expected '\(word)'") }
            index += 1
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        index += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after an object key")
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            if current == UInt8(ascii: "}") { index += 1; return .object(members) }
            try expect(UInt8(ascii: ","), "',' or '}' in an object")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            if current == UInt8(ascii: "]") { index += 1; return .array(elements) }
            try expect(UInt8(ascii: ","), "',' or ']' in an array")
        }
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = current else { throw error("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                // The input was validated as UTF-8 and escapes only add whole scalars, so decoding cannot repair anything.
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0..<0x20:
                throw error("control character in a string must be escaped")
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONSyntaxError) {
        guard let byte = current else { throw error("unterminated escape") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte); return
        case UInt8(ascii: "b"): utf8.append(0x08); return
        case UInt8(ascii: "f"): utf8.append(0x0C); return
        case UInt8(ascii: "n"): utf8.append(0x0A); return
        case UInt8(ascii: "r"): utf8.append(0x0D); return
        case UInt8(ascii: "t"): utf8.append(0x09); return
        case UInt8(ascii: "u"): break
        default: throw error("invalid escape character in a string")
        }
        var code = try parseHex4()
        if (0xD800..<0xDC00).contains(code) {
            // A high surrogate must be followed by an escaped low surrogate; together they name one scalar.
            guard current == UInt8(ascii: "\\") else { throw error("unpaired UTF-16 surrogate in \\u escape") }
            index += 1
            guard current == UInt8(ascii: "u") else { throw error("unpaired UTF-16 surrogate in \\u escape") }
            index += 1
            let low = try parseHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired UTF-16 surrogate in \\u escape") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(code) else { throw error("unpaired UTF-16 surrogate in \\u escape") }
        UTF8.encode(scalar) { utf8.append($0) }
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw error("unterminated \\u escape") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("\\u escape needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        let negative = current == UInt8(ascii: "-")
        if negative { index += 1 }
        var magnitude: Int? = 0  // nil once the integer part leaves Int's range
        guard let first = current, isDigit(first) else { throw error("expected a digit") }
        if first == UInt8(ascii: "0") {
            index += 1
            if let next = current, isDigit(next) { throw error("numbers must not have leading zeros") }
        } else {
            while let byte = current, isDigit(byte) {
                if let value = magnitude {
                    let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                    magnitude = overflow1 || overflow2 ? nil : sum
                }
                index += 1
            }
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            try digits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        if isInteger, let magnitude { return .integer(negative ? -magnitude : magnitude) }
        return .number(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    private mutating func digits() throws(JSONSyntaxError) {
        guard let byte = current, isDigit(byte) else { throw error("expected a digit") }
        while let byte = current, isDigit(byte) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

/// `text` as a JSON string literal, quotes included.
func jsonQuoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
