@testable import CCA
import Foundation
import Testing

/// Plain BPE training written for the test: recount every pair of every word before each merge, take the most
/// frequent (ties: smaller ids), merge it everywhere left to right.
private func naiveMerges(words: [[UInt8]: Int], base: Int, count: Int) -> [([UInt8], [UInt8])] {
    var ids: [[UInt8]: Int] = [:]
    for byte in 0..<256 { ids[[UInt8(byte)]] = base + byte }
    var split = words.map { (word, count) in (symbols: word.map { [$0] }, count: count) }
    var merges: [([UInt8], [UInt8])] = []
    for _ in 0..<count {
        var pairCounts: [[[UInt8]]: Int] = [:]
        for (symbols, count) in split {
            for index in symbols.indices.dropLast() { pairCounts[[symbols[index], symbols[index + 1]], default: 0] += count }
        }
        guard let best = pairCounts.max(by: { a, b in
            a.value != b.value ? a.value < b.value : (ids[a.key[0]]!, ids[a.key[1]]!) > (ids[b.key[0]]!, ids[b.key[1]]!)
        }), best.value >= 2 else { break }
        let (left, right) = (best.key[0], best.key[1])
        ids[left + right] = base + 256 + merges.count
        merges.append((left, right))
        split = split.map { entry in
            var merged: [[UInt8]] = []
            var index = 0
            while index < entry.symbols.count {
                if index + 1 < entry.symbols.count, entry.symbols[index] == left, entry.symbols[index + 1] == right {
                    merged.append(left + right); index += 2
                } else {
                    merged.append(entry.symbols[index]); index += 1
                }
            }
            return (merged, entry.count)
        }
    }
    return merges
}

@Suite struct TokenizerTrainerTests {
    /// The incremental trainer learns the same merges, in the same order, as recounting everything each time.
    @Test func incrementalMergesMatchRecounting() throws {
        let text = try String(contentsOfFile: TokenizersReference.fixturePath, encoding: .utf8) + " naïve café — 日本語 日本語 🎉🎉"
        var trainer = try BPETrainer(vocabularySize: 2 + 256 + 200, specialTokens: ["<|endoftext|>", "<|pad|>"])
        trainer.addText(text)
        let result = trainer.train()

        var words: [[UInt8]: Int] = [:]
        let bytes = Array(text.utf8)
        let program = try RegexProgram(pattern: PreTokenizer.gpt2Pattern)
        for range in bytes.withUnsafeBufferPointer({ program.matches(in: $0) }) { words[Array(bytes[range]), default: 0] += 1 }
        let expected = naiveMerges(words: words, base: 2, count: 200)

        let file = try #require(try JSONSerialization.jsonObject(with: Data(result.json)) as? [String: Any])
        let model = try #require(file["model"] as? [String: Any])
        let merges = try #require(model["merges"] as? [[String]])
        func name(_ bytes: [UInt8]) -> String {
            var utf8: [UInt8] = []
            ByteLevelAlphabet.encode(bytes, into: &utf8)
            return String(decoding: utf8, as: UTF8.self)
        }
        #expect(result.mergeCount == expected.count)
        #expect(merges == expected.map { [name($0.0), name($0.1)] })
        #expect(result.vocabularySize == 2 + 256 + expected.count)
    }

    /// Special tokens are cut out of the corpus, so no merge learns their text, and they keep ids 0, 1, ...
    @Test func specialTokensAreNotLearned() throws {
        var trainer = try BPETrainer(vocabularySize: 400, specialTokens: ["<|endoftext|>"])
        trainer.addText(String(repeating: "ab<|endoftext|>", count: 50))
        let tokenizer = try BPETokenizer(jsonBytes: trainer.train().json)
        #expect(tokenizer.encode("ab<|endoftext|>ab", addSpecialTokens: false) == [257, 0, 257])
        #expect(tokenizer.id(forToken: "<|") == nil)
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabularySize: 100) }
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabularySize: 300, specialTokens: ["<x>", "<x>"]) }
    }
}
