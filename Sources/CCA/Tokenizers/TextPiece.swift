/// A stretch of the text on its way through the encoding pipeline: text still to be normalized, split and
/// tokenized, or an added token already recognised.
struct TextPiece {
    /// The current (normalized) text, valid UTF-8.
    var bytes: [UInt8]
    /// Set once the piece is an added token; such pieces pass through every later stage untouched.
    var addedTokenID: Int?
    /// For each byte, the offset in the original text where the character it stems from begins, following the
    /// alignment rules of `tokenizers`. Only a Metaspace pre-tokenizer with `prepend_scheme: first` asks for it
    /// (it prepends only to the piece that starts the text), so it is nil unless the pipeline has one.
    var origins: [Int]?
    /// Whether `bytes` still holds raw bytes that stand for their ``ByteLevelAlphabet`` characters: the
    /// `ByteLevel` pre-tokenizer's mapping is deferred so that the BPE model can work on the bytes directly
    /// (``mapToAlphabet()`` performs it when a later step needs the text).
    var spellsAlphabet = false

    init(bytes: [UInt8], addedTokenID: Int? = nil, origins: [Int]? = nil) {
        (self.bytes, self.addedTokenID, self.origins) = (bytes, addedTokenID, origins)
    }

    /// The whole input as one piece; `trackOrigins` records where each character begins.
    init(text: [UInt8], trackOrigins: Bool) {
        bytes = text
        guard trackOrigins else { return }
        var origins = [Int](repeating: 0, count: text.count)
        var start = 0
        for index in text.indices {
            if text[index] & 0xC0 != 0x80 { start = index }
            origins[index] = start
        }
        self.origins = origins
    }

    /// Whether the piece begins where the original text begins (`offsets_original().0 == 0` in `tokenizers`).
    var startsText: Bool { origins?.first == 0 }

    func slice(_ range: Range<Int>, addedTokenID: Int? = nil) -> TextPiece {
        TextPiece(bytes: Array(bytes[range]), addedTokenID: addedTokenID, origins: origins.map { Array($0[range]) })
    }

    /// Replaces each range in `matches` (sorted, disjoint) with `replacement`. Inserted bytes take the origin of
    /// the last character they replace, as `NormalizedString::replace` aligns them.
    mutating func replace(_ matches: [Range<Int>], with replacement: [UInt8]) {
        guard !matches.isEmpty else { return }
        var newBytes: [UInt8] = [], newOrigins: [Int]? = origins.map { _ in [] }
        newBytes.reserveCapacity(bytes.count)
        var last = 0
        for match in matches {
            newBytes += bytes[last..<match.lowerBound]
            newBytes += replacement
            if let origins {
                newOrigins! += origins[last..<match.lowerBound]
                let origin = match.upperBound > 0 ? origins[match.upperBound - 1] : 0
                newOrigins! += repeatElement(origin, count: replacement.count)
            }
            last = match.upperBound
        }
        newBytes += bytes[last...]
        if let origins { newOrigins! += origins[last...] }
        (bytes, self.origins) = (newBytes, newOrigins)
    }

    /// Puts `prefix` before a non-empty piece; it takes the origin of the first character.
    mutating func prepend(_ prefix: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if let origins { self.origins = repeatElement(origins[0], count: prefix.count) + origins }
        bytes = prefix + bytes
    }

    /// Replaces each character by `transform(scalar)` (UTF-8); the new bytes take that character's origin.
    mutating func mapScalars(_ transform: (Unicode.Scalar) -> [UInt8]) {
        var newBytes: [UInt8] = [], newOrigins: [Int]? = origins.map { _ in [] }
        newBytes.reserveCapacity(bytes.count)
        var index = 0
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            let mapped = transform(scalar)
            newBytes += mapped
            if let origins { newOrigins! += repeatElement(origins[index], count: mapped.count) }
            index += UTF8.width(scalar)
        }
        (bytes, origins) = (newBytes, newOrigins)
    }

    /// The byte ranges of this piece between and including the matches of `program`, as `tokenizers`'
    /// `Pattern::find_matches` lists them: each with whether it is a match (flipped when `invert`).
    func segments(of program: RegexProgram, invert: Bool) -> [(range: Range<Int>, isMatch: Bool)] {
        if bytes.isEmpty { return [(0..<0, invert)] }
        let matches = bytes.withUnsafeBufferPointer { program.matches(in: $0) }
        var segments: [(range: Range<Int>, isMatch: Bool)] = []
        segments.reserveCapacity(matches.count * 2 + 1)
        var previous = 0
        for match in matches {
            if previous != match.lowerBound { segments.append((previous..<match.lowerBound, invert)) }
            segments.append((match, !invert))
            previous = match.upperBound
        }
        if previous != bytes.count { segments.append((previous..<bytes.count, invert)) }
        return segments
    }
}
