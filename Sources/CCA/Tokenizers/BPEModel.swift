/// The `BPE` model of `tokenizer.json`: a vocabulary, ranked merges, and `tokenizers`' rules for characters
/// outside the vocabulary (byte fallback, the unknown token, fusing).
struct BPEModel: Sendable {
    /// Ids above this are refused, so that the id-indexed tables stay a sane size.
    static let maxTokenID = (1 << 24) - 1

    /// Token text (UTF-8) to id. Keys are bytes, never `String`, whose equality would merge canonically
    /// equivalent but distinct tokens.
    let idsByToken: [[UInt8]: Int]
    /// Token text by id; nil where no token has that id.
    let tokensByID: [[UInt8]?]
    /// `(left id << 32 | right id)` to `(rank << 32 | merged id)`.
    private let merges: [UInt64: UInt64]
    private let unknownID: Int?
    private let fuseUnknown: Bool
    /// The `<0xAB>` token of each byte (-1 where missing), when `byte_fallback` is on.
    private let byteFallbackIDs: [Int]?
    private let ignoreMerges: Bool
    private let continuingSubwordPrefix: [UInt8]?
    private let endOfWordSuffix: [UInt8]?
    /// For words still in raw bytes (``TextPiece/spellsAlphabet``): each byte's alphabet-character token (-1 where
    /// missing), and, for `ignore_merges`, the tokens spelled in the alphabet keyed by the bytes they spell.
    private let byteSymbolIDs: [Int]
    private let idsByAlphabetBytes: [[UInt8]: Int]

    /// Number of vocabulary entries (the base for added tokens' ids, as `get_vocab_size` in `tokenizers`).
    var count: Int { idsByToken.count }

    init(json object: TokenizerJSONObject) throws(TokenizerError) {
        let field = object.field
        if let type = try object.optionalString("type"), type != "BPE" { throw .unsupported(component: "model", type: type) }
        if let dropout = object["dropout"], !dropout.isNull {
            guard let probability = dropout.numberValue else { throw .malformed(field: field + ".dropout", reason: "must be a number or null") }
            if probability != 0 { throw .unsupported(component: "BPE option", type: "dropout \(probability) (random merges)") }
        }
        let vocab = try object.object("vocab")
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(vocab.count)
        var maxID = -1
        for index in 0..<vocab.count {
            let (token, value) = (vocab.key(at: index), vocab.value(at: index))
            let id = try TokenizerJSONObject.integer(value, field: "\(field).vocab[\(jsonQuoted(token))]", in: 0...Self.maxTokenID)
            guard ids.updateValue(id, forKey: Array(token.utf8)) == nil else {
                throw .malformed(field: field + ".vocab", reason: "lists the token \(jsonQuoted(token)) twice")
            }
            maxID = max(maxID, id)
        }
        var tokens = [[UInt8]?](repeating: nil, count: maxID + 1)
        for (token, id) in ids {
            guard tokens[id] == nil else { throw .malformed(field: field + ".vocab", reason: "gives id \(id) to two tokens") }
            tokens[id] = token
        }
        (idsByToken, tokensByID) = (ids, tokens)

        continuingSubwordPrefix = try object.optionalString("continuing_subword_prefix").map { Array($0.utf8) }
        endOfWordSuffix = try object.optionalString("end_of_word_suffix").map { Array($0.utf8) }
        fuseUnknown = try object.bool("fuse_unk", default: false)
        ignoreMerges = try object.bool("ignore_merges", default: false)
        if let unknown = try object.optionalString("unk_token") {
            guard let id = ids[Array(unknown.utf8)] else {
                throw .malformed(field: field + ".unk_token", reason: "names \(jsonQuoted(unknown)), which is not in the vocabulary")
            }
            unknownID = id
        } else {
            unknownID = nil
        }
        if try object.bool("byte_fallback", default: false) {
            byteFallbackIDs = (0..<256).map { byte in ids[Array(byteFallbackToken(UInt8(byte)).utf8)] ?? -1 }
        } else {
            byteFallbackIDs = nil
        }
        merges = try Self.readMerges(try object.array("merges"), field: field + ".merges", ids: ids, prefix: continuingSubwordPrefix)
        byteSymbolIDs = ByteLevelAlphabet.utf8ForByte.map { ids[$0] ?? -1 }
        var alphabetIDs: [[UInt8]: Int] = [:]
        if ignoreMerges {
            for (token, id) in ids { if let bytes = ByteLevelAlphabet.decode(token) { alphabetIDs[bytes] = id } }
        }
        idsByAlphabetBytes = alphabetIDs
    }

    /// Merges in rank order, either "left right" strings or [left, right] pairs, as `tokenizers` accepts them.
    private static func readMerges(_ list: [JSONValue], field: String, ids: [[UInt8]: Int], prefix: [UInt8]?) throws(TokenizerError) -> [UInt64: UInt64] {
        var pairs: [(left: [UInt8], right: [UInt8])] = []
        pairs.reserveCapacity(list.count)
        let legacy = list.first?.stringValue != nil
        for (index, entry) in list.enumerated() {
            if legacy, let line = entry.stringValue {
                if line.hasPrefix("#version") { continue }
                let parts = line.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .malformed(field: "\(field)[\(index)]", reason: "must be two tokens separated by one space") }
                pairs.append((Array(parts[0]), Array(parts[1])))
            } else if !legacy, let elements = entry.arrayValue {
                guard elements.count == 2, let left = elements[0].stringValue, let right = elements[1].stringValue else {
                    throw .malformed(field: "\(field)[\(index)]", reason: "must be a pair of token strings")
                }
                pairs.append((Array(left.utf8), Array(right.utf8)))
            } else {
                throw .malformed(field: "\(field)[\(index)]", reason: "must be like the first entry (all \"a b\" strings or all [\"a\", \"b\"] pairs)")
            }
        }
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(pairs.count)
        let prefixLength = prefix?.count ?? 0
        for (rank, pair) in pairs.enumerated() {
            let describe = "\(field)[\(rank)]"
            guard let left = ids[pair.left], let right = ids[pair.right] else {
                throw .malformed(field: describe, reason: "merges a token that is not in the vocabulary")
            }
            guard pair.right.count >= prefixLength else { throw .malformed(field: describe, reason: "right token is shorter than continuing_subword_prefix") }
            guard let merged = ids[pair.left + pair.right.dropFirst(prefixLength)] else {
                throw .malformed(field: describe, reason: "merges into \(jsonQuoted(String(decoding: pair.left + pair.right.dropFirst(prefixLength), as: UTF8.self))), which is not in the vocabulary")
            }
            // A repeated pair keeps its last rank, as the hash map in `tokenizers` does.
            merges[UInt64(left) << 32 | UInt64(right)] = UInt64(rank) << 32 | UInt64(merged)
        }
        return merges
    }

    /// Words already tokenized in one `encode` call, by text and by raw bytes.
    struct WordCache {
        static let capacity = 1 << 18
        var byText: [[UInt8]: [Int]] = [:]
        var byAlphabetBytes: [[UInt8]: [Int]] = [:]
    }

    /// Appends the ids of one pre-tokenized piece.
    func tokenize(_ piece: TextPiece, into ids: inout [Int], cache: inout WordCache) {
        let word = piece.bytes
        guard !word.isEmpty else { return }
        guard piece.spellsAlphabet else {
            if ignoreMerges, let id = idsByToken[word] { ids.append(id); return }
            if let cached = cache.byText[word] { ids += cached; return }
            let result = mergedWord(word)
            if cache.byText.count < WordCache.capacity { cache.byText[word] = result }
            ids += result
            return
        }
        if ignoreMerges, let id = idsByAlphabetBytes[word] { ids.append(id); return }
        if let cached = cache.byAlphabetBytes[word] { ids += cached; return }
        let symbols = word.map { byteSymbolIDs[Int($0)] }
        let result: [Int]
        if continuingSubwordPrefix == nil, endOfWordSuffix == nil, !symbols.contains(-1) {
            result = applyMerges(symbols)
        } else {
            var text = piece
            text.mapToAlphabet()
            result = mergedWord(text.bytes)
        }
        if cache.byAlphabetBytes.count < WordCache.capacity { cache.byAlphabetBytes[word] = result }
        ids += result
    }

    /// `merge_word` of `tokenizers`: one symbol per character (or per byte through byte fallback, or fused
    /// unknowns), then the merges applied lowest rank first.
    private func mergedWord(_ word: [UInt8]) -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        var index = 0
        while index < word.count {
            let width = utf8Width(word[index])
            var text = Array(word[index..<index + width])
            if index > 0, let prefix = continuingSubwordPrefix { text = prefix + text }
            if index + width == word.count, let suffix = endOfWordSuffix { text += suffix }
            index += width
            if let id = idsByToken[text] {
                if pendingUnknown, let unknownID { symbols.append(unknownID); pendingUnknown = false }
                symbols.append(id)
                continue
            }
            if let fallback = byteFallbackIDs, text.allSatisfy({ fallback[Int($0)] >= 0 }) {
                for byte in text { symbols.append(fallback[Int(byte)]) }
                continue
            }
            guard let unknownID else { continue }  // no unknown token: tokenizers drops the character
            if pendingUnknown && !fuseUnknown { symbols.append(unknownID) }
            pendingUnknown = true
        }
        if pendingUnknown, let unknownID { symbols.append(unknownID) }
        return applyMerges(symbols)
    }

    /// `Word::merge_all`: a min-heap of (rank, position) candidates; stale ones are skipped exactly when
    /// `tokenizers` skips them (its check compares the merged id only).
    private func applyMerges(_ initial: [Int]) -> [Int] {
        guard initial.count > 1 else { return initial }
        var symbol = initial
        var previous = Array(-1..<initial.count - 1)
        var next = Array(1...initial.count)
        next[initial.count - 1] = -1
        var removed = [Bool](repeating: false, count: initial.count)
        var heap = BinaryHeap<MergeCandidate>()
        for position in 0..<initial.count - 1 {
            if let merge = merges[UInt64(symbol[position]) << 32 | UInt64(symbol[position + 1])] {
                heap.push(MergeCandidate(rank: merge >> 32, position: position, mergedID: Int(merge & 0xFFFF_FFFF)))
            }
        }
        while let top = heap.pop() {
            let position = top.position
            if removed[position] || next[position] == -1 { continue }
            let right = next[position]
            guard let current = merges[UInt64(symbol[position]) << 32 | UInt64(symbol[right])],
                  Int(current & 0xFFFF_FFFF) == top.mergedID else { continue }
            symbol[position] = top.mergedID
            removed[right] = true
            next[position] = next[right]
            if next[right] != -1 { previous[next[right]] = position }
            if previous[position] >= 0, let merge = merges[UInt64(symbol[previous[position]]) << 32 | UInt64(symbol[position])] {
                heap.push(MergeCandidate(rank: merge >> 32, position: previous[position], mergedID: Int(merge & 0xFFFF_FFFF)))
            }
            if next[position] != -1, let merge = merges[UInt64(symbol[position]) << 32 | UInt64(symbol[next[position]])] {
                heap.push(MergeCandidate(rank: merge >> 32, position: position, mergedID: Int(merge & 0xFFFF_FFFF)))
            }
        }
        return symbol.indices.compactMap { removed[$0] ? nil : symbol[$0] }
    }
}

/// The byte-fallback token of a byte: `<0x41>` for `A`.
func byteFallbackToken(_ byte: UInt8) -> String {
    let hex = String(byte, radix: 16, uppercase: true)
    return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
}

@inline(__always) func utf8Width(_ lead: UInt8) -> Int { lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4 }

/// A merge waiting in `applyMerges`: ordered by rank, then position, as `tokenizers`' `Merge` is.
private struct MergeCandidate: Comparable {
    /// rank << 32 | position
    let key: UInt64
    let mergedID: Int

    init(rank: UInt64, position: Int, mergedID: Int) { (key, self.mergedID) = (rank << 32 | UInt64(position), mergedID) }

    var position: Int { Int(key & 0xFFFF_FFFF) }

    static func < (a: Self, b: Self) -> Bool { a.key < b.key }
}
