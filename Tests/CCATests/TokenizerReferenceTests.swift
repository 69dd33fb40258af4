@testable import CCA
import Foundation
import Testing

/// The Python `tokenizers` library, run once through `scripts/tokenizers_reference.py`.
enum TokenizersReference {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let fixturePath = repositoryRoot + "/Tests/Fixtures/hamlet-act1-excerpt.txt"

    static let isAvailable: Bool = run(["-c", "import tokenizers"], input: Data()) != nil

    /// stdout of `python3 arguments` fed `input`, or nil when it cannot start or fails.
    static func run(_ arguments: [String], input: Data) -> Data? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let stdin = Pipe(), stdout = Pipe()
        (process.standardInput, process.standardOutput) = (stdin, stdout)
        guard (try? process.run()) != nil else { return nil }
        // Feed stdin from another thread so that a large answer cannot dead-lock against a full input pipe.
        let writer = Thread { stdin.fileHandleForWriting.write(input); try? stdin.fileHandleForWriting.close() }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? output : nil
    }

    /// What the script answers for one tokenizer file.
    struct FileResult {
        let ids: [[Int]], plainIDs: [[Int]], decoded: [String], decodedSkippingSpecials: [String]
        let randomIDs: [[Int]], randomDecoded: [String]
    }

    /// Everything one run of the script gives: each tokenizer file's bytes and results, and each pattern's
    /// matches in each text (byte ranges).
    struct Run {
        let files: [(name: String, json: [UInt8], result: FileResult)]
        let matches: [[[Range<Int>]]]
    }

    /// One script run for all tests: the reference files, our trained tokenizer, and the regex patterns.
    static let shared = Result<Run, any Error> { try makeRun() }

    private static func makeRun() throws -> Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cca-tokenizers-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let trained = directory + "/trained_by_swift.json"
        try writeAtomically(try trainedTokenizerJSON(), to: trained)

        let request: [String: Any] = ["build_dir": directory, "corpus": fixturePath, "tokenizers": [trained],
                                      "texts": tokenizerTestTexts, "patterns": regexTestPatterns]
        let script = repositoryRoot + "/scripts/tokenizers_reference.py"
        let output = try #require(run([script], input: try JSONSerialization.data(withJSONObject: request)), "the reference script failed")
        let answer = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        let raw = try #require(answer["results"] as? [String: [String: Any]])
        var files: [(name: String, json: [UInt8], result: FileResult)] = []
        for file in try #require(answer["files"] as? [String]) {
            let entry = try #require(raw[file])
            let result = FileResult(ids: try #require(entry["ids"] as? [[Int]]), plainIDs: try #require(entry["ids_plain"] as? [[Int]]),
                                decoded: try #require(entry["decoded"] as? [String]),
                                decodedSkippingSpecials: try #require(entry["decoded_skip"] as? [String]),
                                randomIDs: try #require(entry["random_ids"] as? [[Int]]),
                                randomDecoded: try #require(entry["random_decoded"] as? [String]))
            files.append((URL(fileURLWithPath: file).lastPathComponent, try readFile(file), result))
        }
        let matches = try #require(answer["matches"] as? [[[[Int]]]]).map { perText in
            perText.map { ranges in ranges.map { $0[0]..<$0[1] } }
        }
        return Run(files: files, matches: matches)
    }

    /// The Swift trainer's tokenizer of the fixture (plus a few non-English lines), as JSON.
    static func trainedTokenizerJSON() throws -> [UInt8] {
        var trainer = try BPETrainer(vocabularySize: 900, specialTokens: ["<|endoftext|>", "<|pad|>"])
        trainer.addText(try String(contentsOfFile: fixturePath, encoding: .utf8))
        trainer.addText("naïve café — déjà vu<|endoftext|>日本語のテキスト、中文文本 emoji 🎉🎉 ok Ελληνικά κείμενα")
        return trainer.train().json
    }
}

/// Patterns of real tokenizer files (GPT-2, Llama 3, Qwen 2, GPT-4o, DeepSeek-style splits) and the other
/// syntax the matcher accepts.
let regexTestPatterns: [String] = [
    PreTokenizer.gpt2Pattern,
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    #"[一-龥\u3040-ゟ゠-ヿ]+"#, #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#, ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
    #"\d{1,3}"#, #"\w+|[^\w\s]+"#, #"\b\w+\b"#, #"\B\w"#, #"^\s*\S+"#, #"\S+$"#, #"\w+\Z"#, #"\A\W*"#,
    #"a+?b|b"#, #"(?i:hello|world)"#, #"l{2,}?"#, #"[\x41-\x5A]+"#, #"\x{1F600}+|\u00e9"#, #".+"#, #"(?=\d)\d\d"#,
    #"(?!a)\w+"#, #"(a|ab)(c|bcd)(d*)"#, #"\p{^L}+"#, #"\P{Lu}{3}"#, #"[^\p{Alphabetic}\s]+"#, #"[\d,.]+"#,
    #"e|\u0301"#, #"\s+?\S"#, #"[-a]+"#, #"[a-]+"#, #"[]a]+"#, #"x{,2}y"#, #"o{1}"#, #"\t|\n|\r|\f|\v"#, #"'|\?|\*|\+|\.|\{|\("#,
]

/// Text that exercises every part of the pipelines: English prose, whitespace runs, digits, emoji, CJK,
/// combining marks, contractions, added and special tokens, Unicode spaces and controls.
let tokenizerTestTexts: [String] = {
    let fixture = (try? String(contentsOfFile: TokenizersReference.fixturePath, encoding: .utf8)) ?? ""
    let paragraphs = fixture.components(separatedBy: "\n\n").filter { !$0.isEmpty }
    return [fixture] + paragraphs.prefix(8) + [
        "", " ", "   ", "\n", "\n\n\n", "\t \t", "a  b   c    d", "end   ", "   start", " \n \n ", "x \n\n  y",
        "1234567890", "3.14159 and 2,718,281.0", "٣٤٥ ١٢ ۴۵", "Ⅻ ½ ² ³", "0x1F 1e-9", "12 345 6789 12345678",
        "🎉", "👩‍👩‍👧‍👦 family", "🇫🇷🇩🇪 flags", "❤️ love", "emoji 🎉🎉 ok", "😀😃😄😁😆",
        "日本語のテキスト", "中文文本，标点。", "한국어 텍스트", "日本語のテキスト、中文文本",
        "e\u{301}", "Ame\u{301}lie", "a\u{300}\u{301}\u{302}", "\u{301}alone", "ﬁ ligature", "\u{212B} vs \u{C5}", "ſ ſs ſt",
        "It's, I'm, we'll, they're, you've, he'd", "IT'S WE'LL THEY'RE", "don't  'tis 'S", "l'ſ", "o'clock ''",
        "<|endoftext|>", "Hello<|endoftext|>World", "a <|endoftext|> b", "<|begin_of_text|>hi", "<s>hi</s>", "<unk>",
        " <tag> x <tag>y", "x<tag>  <tag>", "hello hello, hellos ahello _hello", " world", "world world", "sands ands bands",
        "<|pad|><|pad|>", "<|pad|> hello <tag>",
        "!!!??? ... ---", "(a)[b]{c}", "\"quoted\" and 'single'", "a.b,c;d:e", "@#$%^&*",
        "a\u{A0}b\u{3000}c\u{2028}d\u{85}e", "\r\n\r\n", "x\r\ny", "tab\there", "\u{0}\u{1}\u{7F}", "\u{200B}zero\u{200D}width",
        "Ελληνικά κείμενα", "naïve café — déjà vu", "Привет мир", "ΣΊΣΥΦΟΣ", "İstanbul ǅ", "\u{E000}\u{10FFFF}",
        String(repeating: "a", count: 300), String(repeating: "ab ", count: 60), String(repeating: " ", count: 40) + "x",
        "HELLO World MiXeD", "Tokenizers 2026: ‘smart’ “quotes” … and dashes –—",
    ]
}()

@Suite struct TokenizerReferenceTests {
    /// Every tokenizer file built by Python `tokenizers` (GPT-2-like, with added tokens of every flag, Llama-3-,
    /// Llama-2-, Mistral-, Gemma-like, Metaspace split, mixed normalizers) and the one our trainer wrote give
    /// the ids, and decode to the text, that Python `tokenizers` gives.
    @Test(.enabled(if: TokenizersReference.isAvailable, "skipped: Python package `tokenizers` not found (python3 -m pip install tokenizers, as .ci/run does)"))
    func encodeAndDecodeMatchPythonTokenizers() throws {
        let reference = try TokenizersReference.shared.get()
        #expect(reference.files.count == 11)
        for (name, json, expected) in reference.files {
            let tokenizer = try BPETokenizer(jsonBytes: json, source: name)
            var mismatches = 0
            for (index, text) in tokenizerTestTexts.enumerated() where mismatches < 5 {
                let ids = tokenizer.encode(text, addSpecialTokens: true)
                let plain = tokenizer.encode(text, addSpecialTokens: false)
                let decoded = tokenizer.decode(expected.ids[index], skipSpecialTokens: false)
                let skipped = tokenizer.decode(expected.ids[index], skipSpecialTokens: true)
                let same = ids == expected.ids[index] && plain == expected.plainIDs[index]
                    && decoded == expected.decoded[index] && skipped == expected.decodedSkippingSpecials[index]
                if !same { mismatches += 1 }
                #expect(ids == expected.ids[index], "\(name): ids of \(text.debugDescription.prefix(80))")
                #expect(plain == expected.plainIDs[index], "\(name): ids without specials of \(text.debugDescription.prefix(80))")
                #expect(decoded == expected.decoded[index], "\(name): decode of \(text.debugDescription.prefix(80))")
                #expect(skipped == expected.decodedSkippingSpecials[index], "\(name): decode skipping specials of \(text.debugDescription.prefix(80))")
            }
            for (ids, text) in zip(expected.randomIDs, expected.randomDecoded) {
                #expect(tokenizer.decode(ids, skipSpecialTokens: false) == text, "\(name): decode of random ids \(ids)")
            }
        }
    }

    /// Our trainer's byte-level file round-trips every text exactly (what Python decodes is checked above).
    @Test(.enabled(if: TokenizersReference.isAvailable, "skipped: Python package `tokenizers` not found (python3 -m pip install tokenizers, as .ci/run does)"))
    func trainedTokenizerIsLosslessAndSpecialAware() throws {
        let reference = try TokenizersReference.shared.get()
        let trained = try #require(reference.files.first { $0.name == "trained_by_swift.json" })
        let tokenizer = try BPETokenizer(jsonBytes: trained.json)
        for text in tokenizerTestTexts { #expect(tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false)) == text) }
        #expect(tokenizer.id(forToken: "<|endoftext|>") == 0)
        #expect(tokenizer.eosTokenID == 0)
        #expect(tokenizer.encode("a<|endoftext|>b", addSpecialTokens: false).contains(0))
        // Python's ids for the fixture are compared above; here: merges made the text shorter than its bytes.
        let fixture = try String(contentsOfFile: TokenizersReference.fixturePath, encoding: .utf8)
        #expect(tokenizer.encode(fixture, addSpecialTokens: false).count < fixture.utf8.count / 2)
    }

    /// The matcher finds the same matches as `tokenizers`' Oniguruma for every test pattern and text.
    @Test(.enabled(if: TokenizersReference.isAvailable, "skipped: Python package `tokenizers` not found (python3 -m pip install tokenizers, as .ci/run does)"))
    func regexMatchesAgreeWithOniguruma() throws {
        let reference = try TokenizersReference.shared.get()
        #expect(reference.matches.count == regexTestPatterns.count)
        for (pattern, expectedPerText) in zip(regexTestPatterns, reference.matches) {
            let program = try RegexProgram(pattern: pattern)
            var mismatches = 0
            for (text, expected) in zip(tokenizerTestTexts, expectedPerText) where mismatches < 3 {
                let bytes = Array(text.utf8)
                let found = bytes.withUnsafeBufferPointer { program.matches(in: $0) }.filter { !$0.isEmpty }
                if found != expected { mismatches += 1 }
                #expect(found == expected, "pattern \(pattern.debugDescription.prefix(60)) on \(text.debugDescription.prefix(60))")
            }
        }
    }
}
