/// The normalizers of `tokenizer.json` that this implementation has, each doing exactly what `tokenizers` does.
indirect enum Normalizer {
    case sequence([Normalizer])
    /// Puts the text before every non-empty piece (Llama 2's `▁`).
    case prepend([UInt8])
    /// Replaces every match of the pattern (a literal or a regex) with the content.
    case replace(RegexProgram, content: [UInt8])
    /// Unicode canonical composition.
    case nfc
    /// Rust's `char::to_lowercase` of each character.
    case lowercase
    /// Removes leading and/or trailing White_Space characters.
    case strip(left: Bool, right: Bool)

    init(json: JSONValue, field: String) throws(TokenizerError) {
        let object = try TokenizerJSONObject(json, field: field)
        switch try object.type() {
        case "Sequence":
            self = .sequence(try object.elements("normalizers", Normalizer.init))
        case "Prepend": self = .prepend(Array(try object.string("prepend").utf8))
        case "Replace":
            self = .replace(try object.pattern("pattern"), content: Array(try object.string("content").utf8))
        case "NFC": self = .nfc
        case "Lowercase": self = .lowercase
        case "Strip": self = .strip(left: try object.bool("strip_left"), right: try object.bool("strip_right"))
        case let other: throw .unsupported(component: "normalizer", type: other)
        }
    }

    /// Whether this normalizer keeps track of character origins; NFC's alignments (recomposition moves
    /// characters) are not reproduced, so it cannot feed a Metaspace that prepends only at the text's start.
    var tracksOrigins: Bool {
        switch self {
        case let .sequence(normalizers): return normalizers.allSatisfy(\.tracksOrigins)
        case .nfc: return false
        case .prepend, .replace, .lowercase, .strip: return true
        }
    }

    func apply(_ piece: inout TextPiece) {
        switch self {
        case let .sequence(normalizers): for normalizer in normalizers { normalizer.apply(&piece) }
        case let .prepend(prefix): piece.prepend(prefix)
        case let .replace(program, content):
            piece.replace(piece.segments(of: program, invert: false).filter(\.isMatch).map(\.range), with: content)
        case .nfc:
            piece.bytes = String(decoding: piece.bytes, as: UTF8.self)._nfcCodeUnits
        case .lowercase:
            piece.mapScalars { scalar in Array(scalar.properties.lowercaseMapping.utf8) }
        case let .strip(left, right):
            let scalars = Array(String(decoding: piece.bytes, as: UTF8.self).unicodeScalars)
            var start = 0, end = scalars.count
            if left { while start < end, scalars[start].properties.isWhitespace { start += 1 } }
            if right { while end > start, scalars[end - 1].properties.isWhitespace { end -= 1 } }
            let lower = scalars[..<start].reduce(0) { $0 + UTF8.width($1) }
            let upper = piece.bytes.count - scalars[end...].reduce(0) { $0 + UTF8.width($1) }
            piece = piece.slice(lower..<upper)
        }
    }
}
