/// One entry of `added_tokens`: text that is cut out of the input before the model sees it.
struct AddedToken: Equatable {
    var content: [UInt8]
    /// Matches only when not touching word characters on either side.
    var singleWord = false
    /// The match absorbs the whitespace on its left / right.
    var leftStrip = false, rightStrip = false
    /// Matched against the normalized text (with its content normalized too) rather than the raw text.
    var normalized = true
    /// Special tokens are dropped by `decode(skipSpecialTokens: true)`.
    var special = false
}

/// The added tokens of a tokenizer and the two matchers that find them, as `tokenizers`' `AddedVocabulary` does.
struct AddedVocabulary {
    private(set) var tokensByID: [Int: AddedToken] = [:]
    private(set) var idsByContent: [[UInt8]: Int] = [:]
    /// The normalized content of normalized tokens whose normalization changes them; used to match and to decode.
    private(set) var normalizedContent: [Int: [UInt8]] = [:]
    private var rawMatcher = TokenMatcher()
    private var normalizedMatcher = TokenMatcher()

    /// Adds the tokens in file order; ids are assigned as `tokenizers`' `add_tokens` assigns them (the model's id
    /// when the content is in its vocabulary, else the next id after the model's vocabulary), whatever the file's
    /// `id` fields say.
    init(tokens: [AddedToken], modelID: ([UInt8]) -> Int?, modelVocabularyCount: Int, normalizer: Normalizer?) throws(TokenizerError) {
        var nextID = modelVocabularyCount
        for token in tokens where !token.content.isEmpty {
            if let id = idsByContent[token.content], tokensByID[id] == token { continue }
            let id: Int
            if let existing = idsByContent[token.content] ?? modelID(token.content) { id = existing } else { id = nextID; nextID += 1 }
            if token.normalized, let normalizer {
                var piece = TextPiece(bytes: token.content)
                normalizer.apply(&piece)
                if piece.bytes != token.content { normalizedContent[id] = piece.bytes }
            }
            idsByContent[token.content] = id
            tokensByID[id] = token
        }
        for (id, token) in tokensByID.sorted(by: { $0.key < $1.key }) {
            if token.normalized {
                try normalizedMatcher.insert(normalizedContent[id] ?? token.content, id: id)
            } else {
                try rawMatcher.insert(token.content, id: id)
            }
        }
    }

    /// Whether `content` is a special token's (decoding compares contents, as `tokenizers` does).
    func isSpecial(_ content: [UInt8]) -> Bool {
        guard let id = idsByContent[content] else { return false }
        return tokensByID[id]?.special == true
    }

    /// The text `decode` uses for an added token: its normalized form when normalization changed it.
    func decodingContent(of id: Int) -> [UInt8]? {
        normalizedContent[id] ?? tokensByID[id]?.content
    }

    /// Cuts the added tokens out of the pieces that are still text; `normalized` picks the tokens matched against
    /// normalized text (the second pass) or raw text (the first).
    func extract(from pieces: [TextPiece], normalized: Bool) -> [TextPiece] {
        let matcher = normalized ? normalizedMatcher : rawMatcher
        guard !matcher.isEmpty else { return pieces }
        var result: [TextPiece] = []
        for piece in pieces {
            guard piece.addedTokenID == nil else { result.append(piece); continue }
            for part in split(piece, matcher) where !part.bytes.isEmpty { result.append(part) }
        }
        return result
    }

    /// `find_matches` and `split_with_indices` of `tokenizers`, including their handling of the strip and
    /// single-word flags.
    private func split(_ piece: TextPiece, _ matcher: TokenMatcher) -> [TextPiece] {
        let bytes = piece.bytes
        var parts: [TextPiece] = []
        var offset = 0
        for match in matcher.matches(in: bytes) {
            guard let token = tokensByID[match.id] else { continue }
            var (start, stop) = (match.range.lowerBound, match.range.upperBound)
            if token.singleWord {
                let spaceBefore = start == 0 || !isRegexWord(lastScalar(bytes[..<start]))
                let spaceAfter = stop == bytes.count || !isRegexWord(firstScalar(bytes[stop...]))
                if !spaceBefore || !spaceAfter { continue }
            }
            if token.leftStrip { start = max(trailingWhitespaceStart(bytes[..<start]), offset) }
            if token.rightStrip { stop += leadingWhitespaceLength(bytes[stop...]) }
            if offset < start { parts.append(piece.slice(offset..<start)) }
            parts.append(piece.slice(start..<max(start, stop), addedTokenID: match.id))
            offset = stop
        }
        if offset < bytes.count { parts.append(piece.slice(offset..<bytes.count)) }
        return parts
    }
}

/// Rust regex's Unicode `\w` (Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control), which
/// `tokenizers` uses for the single-word test.
private func isRegexWord(_ scalar: Unicode.Scalar?) -> Bool {
    guard let properties = scalar?.properties else { return false }
    if properties.isAlphabetic || properties.isJoinControl { return true }
    switch properties.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
    default: return false
    }
}

private func lastScalar(_ bytes: ArraySlice<UInt8>) -> Unicode.Scalar? { String(decoding: bytes, as: UTF8.self).unicodeScalars.last }
private func firstScalar(_ bytes: ArraySlice<UInt8>) -> Unicode.Scalar? { String(decoding: bytes, as: UTF8.self).unicodeScalars.first }

/// Where the run of White_Space at the end of `bytes` begins.
private func trailingWhitespaceStart(_ bytes: ArraySlice<UInt8>) -> Int {
    var start = bytes.endIndex
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars.reversed() {
        guard scalar.properties.isWhitespace else { break }
        start -= UTF8.width(scalar)
    }
    return start
}

/// The byte length of the run of White_Space at the start of `bytes`.
private func leadingWhitespaceLength(_ bytes: ArraySlice<UInt8>) -> Int {
    var length = 0
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
        guard scalar.properties.isWhitespace else { break }
        length += UTF8.width(scalar)
    }
    return length
}
