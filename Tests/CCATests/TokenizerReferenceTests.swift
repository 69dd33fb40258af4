import CCA
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
    struct Result {
        let ids: [[Int]], plainIDs: [[Int]], decoded: [String], decodedSkippingSpecials: [String]
        let randomIDs: [[Int]], randomDecoded: [String]
    }

    /// Builds the reference tokenizer files in `directory` (plus `extra` files) and encodes `texts` with each.
    static func results(directory: String, extra: [String], texts: [String]) throws -> (files: [String], results: [String: Result]) {
        let request: [String: Any] = ["build_dir": directory, "corpus": fixturePath, "tokenizers": extra, "texts": texts]
        let script = repositoryRoot + "/scripts/tokenizers_reference.py"
        let output = try #require(run([script], input: try JSONSerialization.data(withJSONObject: request)), "the reference script failed")
        let answer = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        let files = try #require(answer["files"] as? [String])
        let raw = try #require(answer["results"] as? [String: [String: Any]])
        var results: [String: Result] = [:]
        for (file, entry) in raw {
            results[file] = Result(ids: try #require(entry["ids"] as? [[Int]]), plainIDs: try #require(entry["ids_plain"] as? [[Int]]),
                                   decoded: try #require(entry["decoded"] as? [String]),
                                   decodedSkippingSpecials: try #require(entry["decoded_skip"] as? [String]),
                                   randomIDs: try #require(entry["random_ids"] as? [[Int]]),
                                   randomDecoded: try #require(entry["random_decoded"] as? [String]))
        }
        return (files, results)
    }

    static func makeTemporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cca-tokenizers-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }
}

/// Text that exercises every part of the pipelines: English prose, whitespace runs, digits, emoji, CJK,
/// combining marks, contractions, added and special tokens, Unicode spaces and controls.
let tokenizerTestTexts: [String] = {
    let fixture = (try? String(contentsOfFile: TokenizersReference.fixturePath, encoding: .utf8)) ?? ""
    let paragraphs = fixture.components(separatedBy: "\n\n").filter { !$0.isEmpty }
    return [fixture] + paragraphs.prefix(40) + [
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
    /// Every reference tokenizer file gives the ids, and decodes to the text, that Python `tokenizers` gives.
    @Test(.enabled(if: TokenizersReference.isAvailable, "skipped: Python package `tokenizers` not found (python3 -m pip install tokenizers, as .ci/run does)"))
    func encodeAndDecodeMatchPythonTokenizers() throws {
        let directory = try TokenizersReference.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reference = try TokenizersReference.results(directory: directory, extra: [], texts: tokenizerTestTexts)
        #expect(reference.files.count >= 8)
        for file in reference.files {
            let expected = try #require(reference.results[file])
            let tokenizer = try BPETokenizer(contentsOf: file)
            let name = URL(fileURLWithPath: file).lastPathComponent
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
}
