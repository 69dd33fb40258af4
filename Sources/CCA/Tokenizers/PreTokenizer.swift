/// What a `Split` does with the matches of its pattern (`tokenizers`' `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// The pieces' ranges for the given segments, with whether each is dropped.
    func pieces(_ segments: [(range: Range<Int>, isMatch: Bool)]) -> [(range: Range<Int>, removed: Bool)] {
        switch self {
        case .isolated: return segments.map { ($0.range, false) }
        case .removed: return segments.map { ($0.range, $0.isMatch) }
        case .contiguous, .mergedWithPrevious:
            var result: [(range: Range<Int>, removed: Bool)] = []
            var previousMatch = false
            for segment in segments {
                let merges = self == .contiguous ? segment.isMatch == previousMatch : segment.isMatch && !previousMatch
                if merges, let last = result.last {
                    result[result.count - 1].range = last.range.lowerBound..<segment.range.upperBound
                } else {
                    result.append((segment.range, false))
                }
                previousMatch = segment.isMatch
            }
            return result
        case .mergedWithNext:
            var result: [(range: Range<Int>, removed: Bool)] = []
            var previousMatch = false
            for segment in segments.reversed() {
                if segment.isMatch && !previousMatch, let last = result.last {
                    result[result.count - 1].range = segment.range.lowerBound..<last.range.upperBound
                } else {
                    result.append((segment.range, false))
                }
                previousMatch = segment.isMatch
            }
            return result.reversed()
        }
    }
}

/// When a Metaspace pre-tokenizer puts its replacement character before a piece.
enum PrependScheme: String {
    case first, always, never
}

/// The pre-tokenizers of `tokenizer.json` that this implementation has.
indirect enum PreTokenizer {
    case sequence([PreTokenizer])
    case split(RegexProgram, behavior: SplitBehavior, invert: Bool)
    /// GPT-2's byte-level step: optional leading space, optional split by GPT-2's pattern, then every byte mapped
    /// to its ``ByteLevelAlphabet`` scalar.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// SentencePiece's: spaces become the replacement (`▁`), which is prepended per the scheme, then optionally
    /// split before each replacement character.
    case metaspace(replacement: [UInt8], prependScheme: PrependScheme, split: Bool)

    /// The pattern `tokenizers` hard-codes for `ByteLevel` with `use_regex`.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    private static let gpt2Program = try! RegexProgram(pattern: gpt2Pattern)
    private static let space = RegexProgram(literal: " ")

    init(json: JSONValue, field: String) throws(TokenizerError) {
        let object = try TokenizerJSONObject(json, field: field)
        switch try object.type() {
        case "Sequence":
            self = .sequence(try object.elements("pretokenizers", PreTokenizer.init))
        case "Split":
            let behaviorName = try object.string("behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .malformed(field: field + ".behavior", reason: "names no split behavior: '\(behaviorName)'")
            }
            self = .split(try object.pattern("pattern"), behavior: behavior, invert: try object.bool("invert"))
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: try object.bool("add_prefix_space"), useRegex: try object.bool("use_regex", default: true))
        case "Metaspace":
            let replacement = try object.character("replacement")
            let schemeName = try object.optionalString("prepend_scheme") ?? "always"
            guard let scheme = PrependScheme(rawValue: schemeName) else {
                throw .malformed(field: field + ".prepend_scheme", reason: "must be first, always or never, not '\(schemeName)'")
            }
            // Older files say add_prefix_space: false; tokenizers then insists on prepend_scheme "never".
            if try object.bool("add_prefix_space", default: true) == false, scheme != .never {
                throw .malformed(field: field + ".add_prefix_space", reason: "is false but prepend_scheme is '\(schemeName)'")
            }
            self = .metaspace(replacement: replacement, prependScheme: scheme, split: try object.bool("split", default: true))
        case let other: throw .unsupported(component: "pre-tokenizer", type: other)
        }
    }

    /// Whether some Metaspace in here prepends only at the start of the text, which needs character origins.
    var needsOrigins: Bool {
        switch self {
        case let .sequence(items): return items.contains(where: \.needsOrigins)
        case let .metaspace(_, scheme, _): return scheme == .first
        case .split, .byteLevel: return false
        }
    }

    /// Splits and transforms the pieces that are not added tokens; empty pieces are dropped, as in `tokenizers`.
    func apply(_ pieces: [TextPiece]) -> [TextPiece] {
        switch self {
        case let .sequence(items):
            return items.reduce(pieces) { $1.apply($0) }
        case let .split(program, behavior, invert):
            return Self.splitEach(pieces) { piece in Self.split(piece, program, behavior, invert: invert) }
        case let .byteLevel(addPrefixSpace, useRegex):
            var split = Self.splitEach(pieces) { piece in
                var piece = piece
                if addPrefixSpace && piece.bytes.first != 0x20 { piece.prepend([0x20]) }
                return useRegex ? Self.split(piece, Self.gpt2Program, .isolated, invert: false) : [piece]
            }
            // The mapping itself waits until a later step reads the text (see `TextPiece.spellsAlphabet`).
            for index in split.indices where split[index].addedTokenID == nil { split[index].spellsAlphabet = true }
            return split
        case let .metaspace(replacement, scheme, splits):
            let marker = RegexProgram(literal: String(decoding: replacement, as: UTF8.self))
            return Self.splitEach(pieces) { piece in
                var piece = piece
                piece.replace(piece.segments(of: Self.space, invert: false).filter(\.isMatch).map(\.range), with: replacement)
                let startsWithMarker = piece.bytes.starts(with: replacement)
                if !startsWithMarker && (scheme == .always || (scheme == .first && piece.startsText)) { piece.prepend(replacement) }
                return splits ? Self.split(piece, marker, .mergedWithNext, invert: false) : [piece]
            }
        }
    }

    private static func split(_ piece: TextPiece, _ program: RegexProgram, _ behavior: SplitBehavior, invert: Bool) -> [TextPiece] {
        behavior.pieces(piece.segments(of: program, invert: invert)).compactMap { $0.removed ? nil : piece.slice($0.range) }
    }

    /// `PreTokenizedString::split`: added-token pieces stay, the others are replaced by `body`'s non-empty pieces.
    private static func splitEach(_ pieces: [TextPiece], _ body: (TextPiece) -> [TextPiece]) -> [TextPiece] {
        var result: [TextPiece] = []
        result.reserveCapacity(pieces.count)
        for var piece in pieces {
            if piece.addedTokenID != nil { result.append(piece); continue }
            piece.mapToAlphabet()
            for part in body(piece) where !part.bytes.isEmpty { result.append(part) }
        }
        return result
    }
}

extension TextPiece {
    /// Replaces each byte by the UTF-8 of its ``ByteLevelAlphabet`` scalar, if a byte-level step left that
    /// pending; all of them keep the byte's origin.
    mutating func mapToAlphabet() {
        guard spellsAlphabet else { return }
        var mapped: [UInt8] = []
        mapped.reserveCapacity(bytes.count * 2)
        var mappedOrigins: [Int]? = origins.map { _ in [] }
        for (index, byte) in bytes.enumerated() {
            let scalar = ByteLevelAlphabet.utf8ForByte[Int(byte)]
            mapped += scalar
            if let origins { mappedOrigins! += repeatElement(origins[index], count: scalar.count) }
        }
        (bytes, origins, spellsAlphabet) = (mapped, mappedOrigins, false)
    }
}
