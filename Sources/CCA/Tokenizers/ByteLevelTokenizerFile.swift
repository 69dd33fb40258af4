/// The `tokenizer.json` of a GPT-2-style byte-level BPE, laid out as `tokenizers` saves one
/// (`ByteLevelBPETokenizer` with `add_prefix_space=False`), so that the Python library loads it as is.
enum ByteLevelTokenizerFile {
    /// - Parameters:
    ///   - specialTokens: ids 0..<count, stored as special added tokens and in the vocabulary.
    ///   - tokenBytes: every token's bytes by id (the special tokens' UTF-8 first, then the rest).
    ///   - merges: the merged id pairs in rank order.
    static func json(specialTokens: [String], tokenBytes: [[UInt8]], merges: [(Int, Int)]) -> [UInt8] {
        let names = tokenBytes.enumerated().map { id, bytes in
            id < specialTokens.count ? specialTokens[id] : String(decoding: alphabetText(bytes), as: UTF8.self)
        }
        var lines: [String] = []
        lines.append("{")
        lines.append("  \"version\": \"1.0\",")
        lines.append("  \"truncation\": null,")
        lines.append("  \"padding\": null,")
        let added = specialTokens.enumerated().map { id, token in
            "    {\"id\": \(id), \"content\": \(jsonQuoted(token)), \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}"
        }
        lines.append("  \"added_tokens\": [" + (added.isEmpty ? "]," : "\n" + added.joined(separator: ",\n") + "\n  ],"))
        lines.append("  \"normalizer\": null,")
        lines.append("  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},")
        lines.append("  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true},")
        lines.append("  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},")
        lines.append("  \"model\": {")
        lines.append("    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null,")
        lines.append("    \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,")
        let vocab = names.enumerated().map { id, name in "      \(jsonQuoted(name)): \(id)" }
        lines.append("    \"vocab\": {\n" + vocab.joined(separator: ",\n") + "\n    },")
        let pairs = merges.map { left, right in "      [\(jsonQuoted(names[left])), \(jsonQuoted(names[right]))]" }
        lines.append("    \"merges\": [" + (pairs.isEmpty ? "]" : "\n" + pairs.joined(separator: ",\n") + "\n    ]"))
        lines.append("  }")
        lines.append("}")
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// The bytes written in the ``ByteLevelAlphabet`` (how byte-level vocabularies spell tokens).
    static func alphabetText(_ bytes: [UInt8]) -> [UInt8] {
        var utf8: [UInt8] = []
        ByteLevelAlphabet.encode(bytes, into: &utf8)
        return utf8
    }
}
