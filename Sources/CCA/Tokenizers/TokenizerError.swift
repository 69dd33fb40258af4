/// Why a tokenizer file cannot be used, or why text or token ids cannot be processed.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file is larger than the reader accepts.
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    /// Bytes that should be UTF-8 text are not; `offset` is the first invalid byte.
    case invalidUTF8(source: String, offset: Int)
    /// The file is not valid JSON.
    case invalidJSON(source: String, offset: Int, message: String)
    /// A field of the file is missing or has the wrong form; `field` is its path, e.g. `model.vocab`.
    case malformed(field: String, reason: String)
    /// A component of the file that this implementation does not have (never approximated).
    case unsupported(component: String, type: String)
    /// A regular expression in the file uses syntax this matcher refuses, or is not a valid pattern.
    case unsupportedPattern(pattern: String, reason: String)
    /// A token id that the vocabulary does not hold.
    case unknownTokenID(Int, vocabularySize: Int)
    /// Training cannot start with these settings or this corpus.
    case invalidTraining(reason: String)

    public var description: String {
        switch self {
        case let .fileTooLarge(path, bytes, limit):
            "'\(path)' has \(bytes) bytes, more than the \(limit) a tokenizer file may have; is it really a tokenizer.json?"
        case let .invalidUTF8(source, offset):
            "\(source) is not valid UTF-8 (first bad byte at offset \(offset)); tokenizers take text: convert it to UTF-8 first"
        case let .invalidJSON(source, offset, message): "\(source) is not valid JSON at byte \(offset): \(message)"
        case let .malformed(field, reason): "tokenizer file field '\(field)' \(reason)"
        case let .unsupported(component, type):
            "this tokenizer file needs the \(component) '\(type)', which is not implemented here; no approximation is used, so the file cannot be loaded"
        case let .unsupportedPattern(pattern, reason): "cannot use the regular expression \(jsonQuoted(pattern)): \(reason)"
        case let .unknownTokenID(id, size): "token id \(id) is not in the vocabulary (ids are 0..<\(size))"
        case let .invalidTraining(reason): "cannot train the tokenizer: \(reason)"
        }
    }
}

/// The offset of the first byte that breaks UTF-8 well-formedness, or nil when `bytes` is valid UTF-8.
///
/// Overlong forms, surrogates and scalars above U+10FFFF count as invalid, as in Unicode's definition.
public func firstInvalidUTF8Offset(in bytes: [UInt8]) -> Int? {
    var index = 0
    let end = bytes.count
    while index < end {
        let lead = bytes[index]
        if lead < 0x80 { index += 1; continue }
        let length: Int
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF  // the allowed range of the second byte
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return index
        }
        guard index + length <= end else { return index }
        guard (lower...upper).contains(bytes[index + 1]) else { return index }
        for next in 2..<length where bytes[index + next] & 0xC0 != 0x80 { return index }
        index += length
    }
    return nil
}
