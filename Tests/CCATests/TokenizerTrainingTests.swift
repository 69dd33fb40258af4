@testable import CCA
import CCAServe
import Foundation
import Testing

/// A 300-token byte-level BPE trained on the Hamlet excerpt, and a token directory of the excerpt's paragraphs
/// prepared with it by `cca data prepare --tokenizer` (so the directory records the tokenizer).
enum TokenizedCorpus {
    struct Files { let root: String, tokenizer: String, data: String }

    static func make() throws -> Files {
        let root = CheckpointTests.directory()
        var trainer = try BPETrainer(vocabularySize: 300, specialTokens: ["<|endoftext|>"])
        trainer.addText(String(decoding: try readFile(TokenizersReference.fixturePath), as: UTF8.self))
        let files = Files(root: root, tokenizer: root + "/tokenizer.json", data: root + "/data")
        try writeAtomically(trainer.train().json, to: files.tokenizer)
        let result = try CommandLineTests.run(["data", "prepare", "--tokenizer", files.tokenizer, "--split-on", "\\n\\n",
                                               "--validation-fraction", "0.25", "--output", files.data, TokenizersReference.fixturePath])
        #expect(result.status == 0, "\(result.output)")
        return files
    }
}

/// Tokenizers through training and generation: the data directory and the run keep the tokenizer.json,
/// a changed or foreign tokenizer is refused, and `cca generate` encodes and decodes with it.
@Suite struct TokenizerTrainingTests {
    static func options(data: String, out: String, steps: Int = 2) -> TrainingOptions {
        var options = TrainingOptions()
        (options.dataPath, options.outDirectory, options.steps, options.batchSize, options.contextLength) = (data, out, steps, 2, 16)
        (options.attention, options.seed) = (.cca, 3)
        return options
    }

    @Test func theRunKeepsTheDataDirectorysTokenizerAndChecksItOnLoad() throws {
        let corpus = try TokenizedCorpus.make()
        defer { try? FileManager.default.removeItem(atPath: corpus.root) }
        let original = try Data(contentsOf: URL(fileURLWithPath: corpus.tokenizer))
        #expect(try Data(contentsOf: URL(fileURLWithPath: corpus.data + "/tokenizer.json")) == original)
        let out = corpus.root + "/run"
        let summary = try Trainer.run(Self.options(data: corpus.data, out: out))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/tokenizer.json")) == original)
        let reference = try BPETokenizer(contentsOf: corpus.tokenizer)
        #expect(summary.config.vocabSize == reference.vocabSize)
        let loaded = try #require(try Checkpoint.tokenizer(directory: out))
        let sample = "To be, or not to be: that is the question. Ophelia! 🌸"
        #expect(loaded.encode(sample) == reference.encode(sample))
        #expect(loaded.decode(reference.encode(sample)) == sample)

        // Resuming reads the same tokenizer back; an edited one is caught.
        var resume = TrainingOptions()
        (resume.resumeDirectory, resume.steps) = (out, 3)
        #expect(try Trainer.run(resume).history.count == 3)
        var edited = [UInt8](original)
        edited.append(contentsOf: Array("\n".utf8))
        try writeAtomically(edited, to: out + "/tokenizer.json")
        #expect(throws: TrainingError.corruptCheckpoint(path: out + "/tokenizer.json",
                                                         reason: "it is not the tokenizer the run was trained with (its checksum differs)")) {
            try Checkpoint.tokenizer(directory: out)
        }
    }

    @Test func aTokenizerOtherThanTheRecordedOneIsRefused() throws {
        let corpus = try TokenizedCorpus.make()
        defer { try? FileManager.default.removeItem(atPath: corpus.root) }
        var trainer = try BPETrainer(vocabularySize: 280)
        trainer.addText("some other text, some other merges")
        let other = corpus.root + "/other.json"
        try writeAtomically(trainer.train().json, to: other)
        var options = Self.options(data: corpus.data, out: corpus.root + "/run")
        options.tokenizerPath = other
        #expect(throws: TrainingError.tokenizerMismatch(given: other, recorded: corpus.data + "/tokenizer.json")) { try Trainer.run(options) }
        // The same file given again is fine.
        options.tokenizerPath = corpus.tokenizer
        #expect(try Trainer.run(options).history.count == 2)
    }

    @Test func aTextFileIsEncodedWithTheGivenTokenizer() throws {
        let corpus = try TokenizedCorpus.make()
        defer { try? FileManager.default.removeItem(atPath: corpus.root) }
        var options = Self.options(data: TokenizersReference.fixturePath, out: corpus.root + "/run")
        options.tokenizerPath = corpus.tokenizer
        let summary = try Trainer.run(options)
        let tokenizer = try BPETokenizer(contentsOf: corpus.tokenizer)
        #expect(summary.config.vocabSize == tokenizer.vocabSize)
        let data = try TrainingData.open(TokenizersReference.fixturePath, length: 16, tokenizer: tokenizer)
        let ids = tokenizer.encode(String(decoding: try readFile(TokenizersReference.fixturePath), as: UTF8.self))
        #expect(data.byteCount == ids.count)
        #expect(try Checkpoint.tokenizer(directory: corpus.root + "/run") != nil)
    }

    /// `cca generate` greedy output against the text of the argmax continuation computed here from full forwards.
    @Test func generateEncodesThePromptAndDecodesWithTheCheckpointsTokenizer() throws {
        let corpus = try TokenizedCorpus.make()
        defer { try? FileManager.default.removeItem(atPath: corpus.root) }
        let out = corpus.root + "/run"
        try Trainer.run(Self.options(data: corpus.data, out: out, steps: 4))
        let (prompt, count) = ("HORATIO: Well, sit we down,", 6)
        let result = try CommandLineTests.run(["generate", "--checkpoint", out, "--prompt", prompt, "--max-tokens", "\(count)", "--temperature", "0"])
        #expect(result.status == 0, "\(result.output)")

        let tokenizer = try BPETokenizer(contentsOf: corpus.tokenizer)
        let model = try LanguageModel<Float>(checkpointDirectory: out)
        var tokens = tokenizer.encode(prompt), generated: [Int] = []
        for _ in 0..<count {
            let logits = try model.logits(tokens: tokens, batch: 1)
            let last = Array(logits.storage.suffix(tokenizer.vocabSize))
            let next = last.indices.max { last[$0] < last[$1] }!
            if next == tokenizer.eosTokenID { break }
            (tokens, generated) = (tokens + [next], generated + [next])
        }
        let expected = prompt + tokenizer.decode(generated, skipSpecialTokens: true)
        #expect(result.stdout.hasPrefix(expected + "\n"), "\(result.stdout) vs \(expected)")
    }

    /// The server's text ↔ ids of a tokenizer checkpoint: the tokenizer's encoding, decoding without special
    /// tokens, and its end of text as a stop.
    @Test func theServerUsesTheCheckpointsTokenizer() throws {
        let corpus = try TokenizedCorpus.make()
        defer { try? FileManager.default.removeItem(atPath: corpus.root) }
        try Trainer.run(Self.options(data: corpus.data, out: corpus.root + "/run"))
        let tokens = TextTokens(tokenizer: try #require(try Checkpoint.tokenizer(directory: corpus.root + "/run")))
        let reference = try BPETokenizer(contentsOf: corpus.tokenizer)
        let text = "Marcellus, and Bernardo"
        let endOfText = try #require(reference.id(forToken: "<|endoftext|>"))
        #expect(tokens.encode(text) == reference.encode(text))
        #expect(tokens.decode(reference.encode(text, addSpecialTokens: false) + [endOfText]) == text)
        #expect(tokens.stopTokens == [endOfText])
    }
}
