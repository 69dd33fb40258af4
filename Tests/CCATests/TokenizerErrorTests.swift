@testable import CCA
import Testing

/// A minimal byte-level tokenizer.json around the given parts (JSON text), for error and edge tests.
private func tokenizerJSON(normalizer: String = "null", preTokenizer: String = "null", model: String? = nil,
                           extra: String = "") -> [UInt8] {
    let vocab = (0..<256).map { "\(jsonQuoted(String(Unicode.Scalar(ByteLevelAlphabet.scalarForByte[$0])!))): \($0)" }
    let defaultModel = "{\"type\": \"BPE\", \"vocab\": {\(vocab.joined(separator: ", "))}, \"merges\": []}"
    return Array("""
        {"version": "1.0", \(extra) "added_tokens": [], "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer),
         "post_processor": null, "decoder": {"type": "ByteLevel"}, "model": \(model ?? defaultModel)}
        """.utf8)
}

private func loadError(_ json: [UInt8]) -> TokenizerError? {
    do { _ = try BPETokenizer(jsonBytes: json); return nil } catch { return error }
}

@Suite struct TokenizerErrorTests {
    /// Components that are not implemented are named in a typed error, never approximated.
    @Test func unsupportedComponentsAreNamed() {
        #expect(loadError(tokenizerJSON(normalizer: #"{"type": "NFKC"}"#)) == .unsupported(component: "normalizer", type: "NFKC"))
        #expect(loadError(tokenizerJSON(normalizer: #"{"type": "BertNormalizer", "lowercase": true}"#))
                == .unsupported(component: "normalizer", type: "BertNormalizer"))
        #expect(loadError(tokenizerJSON(preTokenizer: #"{"type": "Whitespace"}"#)) == .unsupported(component: "pre-tokenizer", type: "Whitespace"))
        #expect(loadError(tokenizerJSON(model: #"{"type": "WordPiece", "vocab": {}}"#)) == .unsupported(component: "model", type: "WordPiece"))
        #expect(loadError(tokenizerJSON(extra: #""truncation": {"max_length": 8},"#)) == .unsupported(component: "setting", type: "truncation"))
        let dropout = #"{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}"#
        #expect(loadError(tokenizerJSON(model: dropout)) == .unsupported(component: "BPE option", type: "dropout 0.1 (random merges)"))
        let nfcFirst = loadError(tokenizerJSON(normalizer: #"{"type": "NFC"}"#,
                                               preTokenizer: #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}"#))
        guard case .unsupported(component: "normalizer", _)? = nfcFirst else { Issue.record("NFC before Metaspace(first): \(String(describing: nfcFirst))"); return }
    }

    /// Pattern syntax the matcher does not have is refused with the pattern and the reason.
    @Test func unsupportedPatternSyntaxIsRefused() {
        for pattern in [#"(?<=a)b"#, #"(a)\1"#, #"a++"#, #"(?>a)"#, #"\p{Han}"#, #"[a[b]]"#, #"[a&&b]"#, #"(?i)a"#, #"(?:)*"#,
                        #"(?i:[a-z])"#, #"a{2000}"#, #"(a"#, #"a)"#, #"*a"#, #"\"#, #"[z-a]"#, #"\k<x>"#] {
            do {
                _ = try RegexProgram(pattern: pattern)
                Issue.record("pattern \(pattern) was accepted")
            } catch {
                guard case .unsupportedPattern(pattern: pattern, _) = error else { Issue.record("\(pattern): \(error)"); continue }
            }
        }
        let split = #"{"type": "Split", "pattern": {"Regex": "(?<=x)y"}, "behavior": "Isolated", "invert": false}"#
        guard case .unsupportedPattern? = loadError(tokenizerJSON(preTokenizer: split)) else { Issue.record("lookbehind in a file was accepted"); return }
    }

    /// Malformed files say which field is wrong.
    @Test func malformedFilesNameTheField() {
        #expect(loadError(Array("{".utf8))?.description.contains("not valid JSON") == true)
        #expect(loadError([0x7B, 0xFF, 0x7D]) == .invalidUTF8(source: "the tokenizer JSON", offset: 1))
        #expect(loadError(tokenizerJSON(model: #"{"type": "BPE", "merges": []}"#)) == .malformed(field: "(top level).model.vocab", reason: "is missing"))
        let badMerge = #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#
        #expect(loadError(tokenizerJSON(model: badMerge))?.description.contains("merges into \"ab\", which is not in the vocabulary") == true)
        let sharedID = #"{"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}"#
        #expect(loadError(tokenizerJSON(model: sharedID)) == .malformed(field: "(top level).model.vocab", reason: "gives id 0 to two tokens"))
        let split = #"{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways", "invert": false}"#
        #expect(loadError(tokenizerJSON(preTokenizer: split)) == .malformed(field: "pre_tokenizer.behavior", reason: "names no split behavior: 'Sideways'"))
        let unknownToken = #"{"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []}"#
        guard case .malformed(field: "(top level).model.unk_token", _)? = loadError(tokenizerJSON(model: unknownToken)) else {
            Issue.record("a missing unk_token was accepted"); return
        }
    }

    /// Bytes that are not UTF-8 are refused with the offset of the first bad byte.
    @Test func invalidUTF8TextIsRefused() throws {
        let tokenizer = try BPETokenizer(jsonBytes: tokenizerJSON(preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}"#))
        #expect(throws: TokenizerError.invalidUTF8(source: "the text", offset: 2)) {
            try tokenizer.encode(utf8: [0x61, 0x62, 0xC3, 0x28], addSpecialTokens: false)
        }
        for (bytes, offset) in [([0xED, 0xA0, 0x80], 0), ([0xC0, 0xAF], 0), ([0x61, 0xF4, 0x90, 0x80, 0x80], 1), ([0xE2, 0x82], 0)] as [([UInt8], Int)] {
            #expect(firstInvalidUTF8Offset(in: bytes) == offset, "\(bytes)")
        }
        #expect(firstInvalidUTF8Offset(in: Array("héllo 🎉 中".utf8)) == nil)
        // With all 256 bytes and no merges, the ids of valid text are its bytes mapped to the alphabet's ids.
        #expect(try tokenizer.encode(utf8: Array("aé 🎉".utf8), addSpecialTokens: false) == Array("aé 🎉".utf8).map(Int.init))
    }

    /// A pathological pattern finishes (the failure memo takes over) with the matches of an equivalent simple one.
    @Test func catastrophicPatternsStayPolynomial() throws {
        let slow = try RegexProgram(pattern: "(a|a)*b|(a|aa)+c")
        let simple = try RegexProgram(pattern: "a*b|a+c")
        for text in [String(repeating: "a", count: 3000), String(repeating: "a", count: 3000) + "b", "aaab aac " + String(repeating: "a", count: 500) + "c"] {
            let bytes = Array(text.utf8)
            let expected = bytes.withUnsafeBufferPointer { simple.matches(in: $0) }
            #expect(bytes.withUnsafeBufferPointer { slow.matches(in: $0) } == expected)
        }
    }

    /// The byte tokenizer is the UTF-8 bytes, with lossy decoding of invalid sequences.
    @Test func byteTokenizerIsUTF8Bytes() {
        let tokenizer: any Tokenizer = ByteTokenizer()
        let text = "héllo 🎉"
        #expect(tokenizer.encode(text) == Array(text.utf8).map(Int.init))
        #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        #expect(tokenizer.decode([0x61, 0xFF, 0x62, 300]) == "a\u{FFFD}b")
        #expect(tokenizer.vocabSize == 256 && tokenizer.bosTokenID == nil && tokenizer.eosTokenID == nil)
        #expect(tokenizer.id(forToken: "A") == 65 && tokenizer.token(forID: 0xE9) == "<0xE9>")
    }
}
