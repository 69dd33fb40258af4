import ArgumentParser
import CCA

/// `cca data`: corpus preparation.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Prepare corpora for training.", subcommands: [DataPrepareCommand.self])
}

/// `cca data prepare`: tokenises text files once into the memory-mapped token files `cca train --data` reads.
struct DataPrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Tokenise text files into DIR/train.tokens and DIR/validation.tokens, split by document.",
        discussion: """
        Each file is a document (or, with --split-on, each piece between separators). Every k-th document, \
        k = 1/--validation-fraction, goes to validation, so no validation text is ever trained on. Tokens are \
        UTF-8 bytes (vocabulary 256), or with --tokenizer the ids of a tokenizer.json (its special tokens, \
        such as BOS/EOS, added to each document); the tokenizer.json is copied into DIR, and training and generation \
        use it from there. Train on the result with `cca train --data DIR`.
        """)

    @Option(help: "Output directory (created if needed).") var output: String
    @Option(name: .customLong("split-on"), help: "Split each file into documents at this string (e.g. a blank line).")
    var splitOn: String?
    @Option(name: .customLong("validation-fraction"), help: "Share of documents held out for validation.")
    var validationFraction: Double = 0.1
    @Option(help: "A Hugging Face tokenizer.json (for example one written by `cca tokenizer train`); default: bytes.")
    var tokenizer: String?
    @Argument(help: "Text files.") var files: [String]

    func run() throws {
        let recorded = try self.tokenizer.map { try RecordedTokenizer(contentsOf: $0) }
        let tokenizer = recorded?.tokenizer
        let documents = try CorpusPreparation.documents(paths: files, separator: splitOn.map { $0.replacingEscapes() })
        // Bytes need no decoding (any byte is a token); a tokenizer takes text, so invalid UTF-8 is refused.
        let summary = try CorpusPreparation.prepare(documents, vocabSize: tokenizer?.vocabSize ?? 256, validationFraction: validationFraction,
                                                    directory: output) { bytes in
            try tokenizer.map { try $0.encode(utf8: bytes, addSpecialTokens: true) } ?? bytes.map(Int.init)
        }
        // The directory records its tokenizer, so training and generation turn the ids back into the same text;
        // byte tokens leave none (one left from an earlier preparation would mislabel them).
        if let recorded { try recorded.write(in: output) } else { try removeFile(output + "/" + RecordedTokenizer.fileName) }
        print("\(output): train \(summary.trainDocuments) documents, \(summary.trainTokens) tokens; "
              + "validation \(summary.validationDocuments) documents, \(summary.validationTokens) tokens")
    }
}

extension String {
    /// `\n` and `\t` written as two characters on a command line, as the characters they stand for.
    func replacingEscapes() -> String {
        var result = "", escaped = false
        for character in self {
            if escaped {
                result.append(character == "n" ? "\n" : character == "t" ? "\t" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return escaped ? result + "\\" : result
    }
}
