/// The decoders of `tokenizer.json`: each turns the list of token strings into a new list (`decode_chain` in
/// `tokenizers`); the final list is concatenated.
indirect enum TokenDecoder: Sendable {
    case sequence([TokenDecoder])
    /// Maps ``ByteLevelAlphabet`` scalars back to bytes and reads them as UTF-8 (invalid parts become U+FFFD).
    case byteLevel
    /// Replacement characters become spaces, except in the first token when the scheme prepends.
    case metaspace(replacement: UInt32, prependScheme: PrependScheme)
    case replace(RegexProgram, content: [UInt8])
    /// Runs of `<0xAB>` tokens become the text their bytes spell (or one U+FFFD per byte if not UTF-8).
    case byteFallback
    /// Joins all tokens into one.
    case fuse
    /// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
    case strip(content: UInt32, start: Int, stop: Int)

    init(json: JSONValue, field: String) throws(TokenizerError) {
        let object = try TokenizerJSONObject(json, field: field)
        switch try object.type() {
        case "Sequence":
            self = .sequence(try object.elements("decoders", TokenDecoder.init))
        case "ByteLevel": self = .byteLevel
        case "Metaspace":
            // The pre-tokenizer's reading of the same fields decides the scheme.
            guard case let .metaspace(replacement, scheme, _) = try PreTokenizer(json: json, field: field) else {
                throw .malformed(field: field, reason: "is not a Metaspace decoder")
            }
            self = .metaspace(replacement: String(decoding: replacement, as: UTF8.self).unicodeScalars.first!.value, prependScheme: scheme)
        case "Replace": self = .replace(try object.pattern("pattern"), content: Array(try object.string("content").utf8))
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            let content = try object.character("content")
            self = .strip(content: String(decoding: content, as: UTF8.self).unicodeScalars.first!.value,
                          start: try object.integer("start"), stop: try object.integer("stop"))
        case let other: throw .unsupported(component: "decoder", type: other)
        }
    }

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        switch self {
        case let .sequence(decoders): return decoders.reduce(tokens) { $1.decodeChain($0) }
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                if let decoded = ByteLevelAlphabet.decode(token) { bytes += decoded } else { bytes += token }
            }
            return [Array(String(decoding: bytes, as: UTF8.self).utf8)]
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { index, token in
                var output = String.UnicodeScalarView()
                for scalar in String(decoding: token, as: UTF8.self).unicodeScalars {
                    if scalar.value != replacement { output.append(scalar) } else if index != 0 || scheme == .never { output.append(" ") }
                }
                return Array(String(output).utf8)
            }
        case let .replace(program, content):
            return tokens.map { token in
                var piece = TextPiece(bytes: token)
                piece.replace(piece.segments(of: program, invert: false).filter(\.isMatch).map(\.range), with: content)
                return piece.bytes
            }
        case .byteFallback: return Self.fallBack(tokens)
        case .fuse: return [tokens.flatMap { $0 }]
        case let .strip(content, start, stop):
            return tokens.map { token in
                let scalars = Array(String(decoding: token, as: UTF8.self).unicodeScalars)
                var startCut = 0
                while startCut < min(start, scalars.count), scalars[startCut].value == content { startCut += 1 }
                var stopCut = scalars.count
                while scalars.count - stopCut < stop, stopCut > startCut, scalars[stopCut - 1].value == content { stopCut -= 1 }
                var output = String.UnicodeScalarView()
                output.append(contentsOf: scalars[startCut..<stopCut])
                return Array(String(output).utf8)
            }
        }
    }

    private static func fallBack(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var output: [[UInt8]] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if firstInvalidUTF8Offset(in: pending) == nil { output.append(pending) } else {
                output += repeatElement(Array("\u{FFFD}".utf8), count: pending.count)
            }
            pending.removeAll()
        }
        for token in tokens {
            if let byte = fallbackByte(token) { pending.append(byte); continue }
            flush()
            output.append(token)
        }
        flush()
        return output
    }

    /// The byte of a `<0xAB>` token: six bytes, `<0x`, two characters Rust's `u8::from_str_radix(_, 16)`
    /// accepts (hex digits of either case, or `+` and one digit), `>`.
    private static func fallbackByte(_ token: [UInt8]) -> UInt8? {
        guard token.count == 6, token.starts(with: Array("<0x".utf8)), token[5] == UInt8(ascii: ">") else { return nil }
        func digit(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        if token[3] == UInt8(ascii: "+") { return digit(token[4]) }
        guard let high = digit(token[3]), let low = digit(token[4]) else { return nil }
        return high << 4 | low
    }
}
