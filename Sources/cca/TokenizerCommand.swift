import ArgumentParser
import CCA
#if canImport(Glibc)
import Glibc
#endif

/// `cca tokenizer`: train a byte-level BPE tokenizer, or encode and decode with any supported `tokenizer.json`.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a byte-level BPE tokenizer, or encode/decode text with a Hugging Face tokenizer.json.",
        subcommands: [TokenizerTrainCommand.self, TokenizerEncodeCommand.self, TokenizerDecodeCommand.self])
}

struct TokenizerTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Learn a GPT-2-style byte-level BPE from UTF-8 text files and write it as tokenizer.json.")

    @Option(help: "Vocabulary size: special tokens + 256 bytes + merges.") var vocab: Int = 8192
    @Option(help: "A special token (repeatable), e.g. '<|endoftext|>'; ids 0, 1, ... in the order given.") var special: [String] = []
    @Option(help: "Pairs seen fewer times than this are not merged.") var minFrequency: Int = 2
    @Option(help: "Where to write the tokenizer.json (written atomically).") var output: String
    @Flag(help: "Replace invalid UTF-8 in the corpus with U+FFFD instead of stopping.") var lossy = false
    @Argument(help: "Corpus files (UTF-8 text).") var corpus: [String]

    func validate() throws {
        guard !corpus.isEmpty else { throw ValidationError("name at least one corpus file") }
        guard minFrequency >= 1 else { throw ValidationError("--min-frequency must be at least 1") }
    }

    func run() throws {
        var trainer = try BPETrainer(vocabularySize: vocab, specialTokens: special)
        trainer.minimumPairCount = minFrequency
        let clock = ContinuousClock()
        let start = clock.now
        var totalBytes = 0
        for path in corpus {
            let bytes = try readFile(path)
            totalBytes += bytes.count
            trainer.addText(try utf8Text(bytes, source: "'\(path)'", lossy: lossy))
        }
        print("counted the words of \(formatBytes(totalBytes)) in \(format((clock.now - start).seconds)) s")
        let result = trainer.train { progress in
            let rate = Double(progress.merges) / max(progress.seconds, 1e-9)
            let remaining = Double(progress.targetMerges - progress.merges) / max(rate, 1e-9)
            print("merges \(progress.merges)/\(progress.targetMerges)  \(format(rate)) merges/s  "
                  + "\(format(progress.seconds)) s  ETA \(format(remaining)) s")
            fflush(nil)
        }
        try writeAtomically(result.json, to: output)
        let shortfall = result.mergeCount < vocab - special.count - 256
            ? " (the corpus had no more pairs seen \(minFrequency)+ times)" : ""
        print("wrote \(output): vocabulary \(result.vocabularySize)\(shortfall), \(result.mergeCount) merges from "
              + "\(result.distinctWords) distinct words in \(format(result.seconds)) s")
    }
}

struct TokenizerEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Print the token ids of a text file (or stdin) on one line, separated by spaces.",
        discussion: "Special tokens are added as Python tokenizers' encode(text) adds them, unless --no-special-tokens. "
            + "The text must be UTF-8: invalid bytes stop with their offset, or become U+FFFD with --lossy.")

    @Option(help: "The tokenizer.json to use.") var tokenizer: String
    @Flag(help: "Do not add the post-processor's special tokens (BOS/EOS).") var noSpecialTokens = false
    @Flag(help: "Replace invalid UTF-8 with U+FFFD instead of stopping.") var lossy = false
    @Flag(help: "Report load and encode times on stderr.") var timing = false
    @Argument(help: "Text file (default: stdin).") var file: String?

    func run() throws {
        let clock = ContinuousClock()
        let loadStart = clock.now
        let model = try BPETokenizer(contentsOf: tokenizer)
        let loadSeconds = (clock.now - loadStart).seconds
        let bytes = try file.map { try readFile($0) } ?? readStandardInput()
        let text = try utf8Text(bytes, source: file.map { "'\($0)'" } ?? "standard input", lossy: lossy)
        let encodeStart = clock.now
        let ids = model.encode(text, addSpecialTokens: !noSpecialTokens)
        let encodeSeconds = (clock.now - encodeStart).seconds
        print(ids.map(String.init).joined(separator: " "))
        if timing {
            let line = "encoded \(bytes.count) bytes into \(ids.count) ids in \(format(encodeSeconds)) s: "
                + "\(format(Double(bytes.count) / 1e6 / max(encodeSeconds, 1e-9))) MB/s (tokenizer loaded in \(format(loadSeconds)) s)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }
}

struct TokenizerDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Read token ids (whitespace-separated) from stdin and print their text.",
        discussion: "The text is printed exactly, with no newline added, so that encode then decode gives the file back.")

    @Option(help: "The tokenizer.json to use.") var tokenizer: String
    @Flag(help: "Leave out special tokens.") var skipSpecialTokens = false

    func run() throws {
        let model = try BPETokenizer(contentsOf: tokenizer)
        let text = String(decoding: try readStandardInput(), as: UTF8.self)
        var ids: [Int] = []
        for word in text.split(whereSeparator: \.isWhitespace) {
            guard let id = Int(word), id >= 0 else { throw ValidationError("'\(word)' is not a token id (a non-negative integer)") }
            guard model.token(forID: id) != nil else { throw TokenizerError.unknownTokenID(id, vocabularySize: model.vocabSize) }
            ids.append(id)
        }
        print(model.decode(ids, skipSpecialTokens: skipSpecialTokens), terminator: "")
    }
}

/// `bytes` as text: refused with the first bad offset unless `lossy`, which shows bad sequences as U+FFFD.
private func utf8Text(_ bytes: [UInt8], source: String, lossy: Bool) throws -> String {
    if !lossy, let offset = firstInvalidUTF8Offset(in: bytes) { throw TokenizerError.invalidUTF8(source: source, offset: offset) }
    return String(decoding: bytes, as: UTF8.self)
}

private func readStandardInput() throws -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(0, &buffer, buffer.count)
        if count < 0 {
            if errno == EINTR { continue }
            throw FileIOError(path: "standard input", operation: "read", reason: String(cString: strerror(errno)))
        }
        if count == 0 { return bytes }
        bytes += buffer[0..<count]
    }
}
