/// How far training has come, for progress lines.
public struct BPETrainingProgress: Sendable {
    /// Merges learned so far, and the number the vocabulary size asks for.
    public let merges: Int, targetMerges: Int
    /// Seconds since merging started (counting words is not included).
    public let seconds: Double
}

/// What training produced.
public struct BPETrainingResult: Sendable {
    /// The `tokenizer.json` text: GPT-2-style byte-level BPE that the Python `tokenizers` library loads.
    public let json: [UInt8]
    /// Merges learned; fewer than asked when the corpus ran out of pairs seen `minimumPairCount` times.
    public let mergeCount: Int
    /// Final vocabulary size: special tokens + 256 bytes + merges.
    public let vocabularySize: Int
    /// Distinct pre-tokenized words the merges were learned from.
    public let distinctWords: Int
    /// Seconds spent merging.
    public let seconds: Double
}

/// Learns a GPT-2-style byte-level BPE tokenizer from text.
///
/// Text is split as `tokenizers`' `ByteLevel` pre-tokenizer splits it (GPT-2's pattern, no prefix space), with
/// the special tokens cut out first so that they are never learned from; each distinct word is counted once.
/// Merges then repeatedly join the most frequent adjacent pair (ties: the pair of smaller ids). Pair counts are
/// kept up to date incrementally: a merge revisits only the words that contain its pair, and a max-heap with
/// lazily refreshed counts finds the next pair, so no merge recounts the corpus.
///
/// ```swift
/// var trainer = try BPETrainer(vocabularySize: 8192, specialTokens: ["<|endoftext|>"])
/// trainer.addText(corpus)
/// let result = try trainer.train()
/// try writeAtomically(result.json, to: "tokenizer.json")
/// ```
public struct BPETrainer {
    public let vocabularySize: Int
    public let specialTokens: [String]
    /// Pairs seen fewer times than this are never merged.
    public var minimumPairCount = 2

    private var wordCounts: [[UInt8]: Int] = [:]
    private var specialMatcher = TokenMatcher()
    private static let wordPattern = try! RegexProgram(pattern: PreTokenizer.gpt2Pattern)

    /// - Throws: ``TokenizerError/invalidTraining(reason:)`` when the size cannot hold the special tokens and
    ///   the 256 bytes, or a special token is empty or repeated.
    public init(vocabularySize: Int, specialTokens: [String] = []) throws(TokenizerError) {
        guard vocabularySize >= specialTokens.count + 256, vocabularySize <= BPEModel.maxTokenID + 1 else {
            throw .invalidTraining(reason: "the vocabulary size \(vocabularySize) must be between \(specialTokens.count + 256) "
                                   + "(special tokens + 256 bytes) and \(BPEModel.maxTokenID + 1)")
        }
        for (index, token) in specialTokens.enumerated() {
            guard !token.isEmpty else { throw .invalidTraining(reason: "a special token is empty") }
            if token.unicodeScalars.count == 1, ByteLevelAlphabet.byte(for: token.unicodeScalars.first!.value) != nil {
                throw .invalidTraining(reason: "the special token \(jsonQuoted(token)) is a character of the byte alphabet, which is already a token")
            }
            do { try specialMatcher.insert(Array(token.utf8), id: index) } catch {
                throw .invalidTraining(reason: "the special token \(jsonQuoted(token)) is given twice")
            }
        }
        (self.vocabularySize, self.specialTokens) = (vocabularySize, specialTokens)
    }

    /// Counts the words of `text`.
    public mutating func addText(_ text: String) {
        let bytes = Array(text.utf8)
        var start = 0
        for special in specialMatcher.matches(in: bytes) + [(range: bytes.count..<bytes.count, id: -1)] {
            let segment = Array(bytes[start..<special.range.lowerBound])
            segment.withUnsafeBufferPointer { buffer in
                for word in Self.wordPattern.matches(in: buffer) { wordCounts[Array(buffer[word]), default: 0] += 1 }
            }
            start = special.range.upperBound
        }
    }

    /// Learns the merges; `progress` is called about every `progressInterval` seconds and at the end.
    public func train(progressInterval: Double = 1, progress: ((BPETrainingProgress) -> Void)? = nil) -> BPETrainingResult {
        let clock = ContinuousClock()
        let start = clock.now
        let base = specialTokens.count
        var tokenBytes: [[UInt8]] = specialTokens.map { Array($0.utf8) } + (0..<256).map { [UInt8($0)] }
        var words: [[Int]] = [], counts: [Int] = []
        for (word, count) in wordCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(word.map { base + Int($0) })
            counts.append(count)
        }

        let specialTexts = Set(specialTokens.map { Array($0.utf8) })
        var pairCounts: [UInt64: Int] = [:]
        var wordsWithPair: [UInt64: [Int]] = [:]
        for (index, word) in words.enumerated() {
            for position in word.indices.dropLast() {
                let pair = Self.key(word[position], word[position + 1])
                pairCounts[pair, default: 0] += counts[index]
                wordsWithPair[pair, default: []].append(index)
            }
        }
        var heap = BinaryHeap<PairCandidate>()
        for (pair, count) in pairCounts { heap.push(PairCandidate(count: count, pair: pair)) }

        let targetMerges = vocabularySize - tokenBytes.count
        var merges: [(Int, Int)] = []
        var visited = [Int](repeating: -1, count: words.count)
        var lastReport = start
        while merges.count < targetMerges, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {
                if current >= minimumPairCount { heap.push(PairCandidate(count: current, pair: top.pair)) }
                continue
            }
            guard current >= minimumPairCount else { break }
            let (left, right) = (Int(top.pair >> 32), Int(top.pair & 0xFFFF_FFFF))
            // A token spelled like a special token would give the vocabulary one name twice: never learn it.
            if !specialTexts.isEmpty, specialTexts.contains(ByteLevelTokenizerFile.alphabetText(tokenBytes[left] + tokenBytes[right])) {
                pairCounts[top.pair] = nil
                continue
            }
            let merged = tokenBytes.count
            tokenBytes.append(tokenBytes[left] + tokenBytes[right])
            merges.append((left, right))

            var created: Set<UInt64> = []
            for index in wordsWithPair.removeValue(forKey: top.pair) ?? [] where visited[index] != merged {
                visited[index] = merged
                let count = counts[index]
                var word = words[index]
                for position in word.indices.dropLast() { pairCounts[Self.key(word[position], word[position + 1])]! -= count }
                var rewritten: [Int] = []
                rewritten.reserveCapacity(word.count)
                var position = 0
                while position < word.count {
                    if position + 1 < word.count, word[position] == left, word[position + 1] == right {
                        rewritten.append(merged); position += 2
                    } else {
                        rewritten.append(word[position]); position += 1
                    }
                }
                word = rewritten
                for position in word.indices.dropLast() {
                    let pair = Self.key(word[position], word[position + 1])
                    pairCounts[pair, default: 0] += count
                    if word[position] == merged || word[position + 1] == merged {
                        created.insert(pair)
                        wordsWithPair[pair, default: []].append(index)
                    }
                }
                words[index] = word
            }
            pairCounts[top.pair] = nil
            for pair in created { heap.push(PairCandidate(count: pairCounts[pair]!, pair: pair)) }

            if let progress, (clock.now - lastReport).seconds >= progressInterval {
                lastReport = clock.now
                progress(BPETrainingProgress(merges: merges.count, targetMerges: targetMerges, seconds: (clock.now - start).seconds))
            }
        }
        let seconds = (clock.now - start).seconds
        progress?(BPETrainingProgress(merges: merges.count, targetMerges: targetMerges, seconds: seconds))
        let json = ByteLevelTokenizerFile.json(specialTokens: specialTokens, tokenBytes: tokenBytes, merges: merges)
        return BPETrainingResult(json: json, mergeCount: merges.count, vocabularySize: tokenBytes.count,
                                 distinctWords: words.count, seconds: seconds)
    }

    private static func key(_ left: Int, _ right: Int) -> UInt64 { UInt64(left) << 32 | UInt64(right) }
}

/// A pair waiting to be merged: the larger count first, then the pair of smaller ids.
private struct PairCandidate: Comparable {
    let count: Int
    let pair: UInt64

    static func < (a: Self, b: Self) -> Bool { a.count != b.count ? a.count > b.count : a.pair < b.pair }
}
