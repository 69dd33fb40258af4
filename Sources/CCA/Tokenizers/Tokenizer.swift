/// Text to token ids and back: what training and generation need from a tokenizer, whichever scheme it uses.
///
/// ``BPETokenizer`` reads a Hugging Face `tokenizer.json`; ``ByteTokenizer`` is the package's original scheme
/// (one token per UTF-8 byte).
public protocol Tokenizer: Sendable {
    /// The number of ids the model needs rows for: one more than the largest id the tokenizer can produce.
    var vocabSize: Int { get }
    /// The id of the beginning-of-sequence token, when the tokenizer has one.
    var bosTokenID: Int? { get }
    /// The id of the end-of-sequence (end-of-text) token, when the tokenizer has one.
    var eosTokenID: Int? { get }

    /// The ids of `text`; `addSpecialTokens` adds what the tokenizer's post-processor adds (BOS, EOS, ...),
    /// as the `add_special_tokens` argument of `tokenizers` does.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    /// The text of `ids`; ids outside the vocabulary are skipped, as `tokenizers` skips them, and
    /// `skipSpecialTokens` drops special tokens.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// The id of a token given by its text in the vocabulary, e.g. `"<|endoftext|>"` or `"Ġthe"`.
    func id(forToken token: String) -> Int?
    /// The vocabulary text of an id.
    func token(forID id: Int) -> String?
}

extension Tokenizer {
    /// The ids of `text` with the tokenizer's special tokens, as `tokenizers`' `encode(text)` gives them.
    public func encode(_ text: String) -> [Int] { encode(text, addSpecialTokens: true) }

    /// The text of `ids`, special tokens included, as `tokenizers`' `decode(ids)` gives it.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecialTokens: false) }

    /// The ids of UTF-8 `bytes`, which must be valid UTF-8 (a tokenizer takes text, not arbitrary bytes).
    ///
    /// - Throws: ``TokenizerError/invalidUTF8(source:offset:)`` naming the first invalid byte.
    public func encode(utf8 bytes: [UInt8], addSpecialTokens: Bool) throws(TokenizerError) -> [Int] {
        if let offset = firstInvalidUTF8Offset(in: bytes) { throw .invalidUTF8(source: "the text", offset: offset) }
        return encode(String(decoding: bytes, as: UTF8.self), addSpecialTokens: addSpecialTokens)
    }
}

/// One token per UTF-8 byte: ids 0...255, no special tokens. The scheme `cca train` used before real tokenizers.
public struct ByteTokenizer: Tokenizer {
    public init() {}

    public var vocabSize: Int { 256 }
    public var bosTokenID: Int? { nil }
    public var eosTokenID: Int? { nil }

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] { text.utf8.map(Int.init) }

    /// The bytes read as UTF-8, each invalid sequence shown as U+FFFD; ids above 255 are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        String(decoding: ids.compactMap { (0...255).contains($0) ? UInt8($0) : nil }, as: UTF8.self)
    }

    /// The id of a one-byte token (a single ASCII character).
    public func id(forToken token: String) -> Int? { token.utf8.count == 1 ? Int(token.utf8.first!) : nil }

    /// The byte as text: ASCII as itself, other bytes as `<0xAB>`.
    public func token(forID id: Int) -> String? {
        guard (0...255).contains(id) else { return nil }
        return id < 0x80 ? String(Unicode.Scalar(UInt8(id))) : byteFallbackToken(UInt8(id))
    }
}
