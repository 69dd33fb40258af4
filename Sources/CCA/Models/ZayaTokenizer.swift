/// What generating text with a ZAYA model needs from a tokenizer: the ids of a prompt and the text of ids.
///
/// ZAYA1 ships a Gemma 3 tokenizer as `tokenizer.json` (``ModelDirectory/tokenizerPath``); any type that
/// reads it conforms. The package's own tokenizers (`Sources/CCA/Tokenizers`) provide both methods with
/// these signatures, so they conform with an empty extension.
public protocol ZayaTokenizer: Sendable {
    /// The ids of `text`, with the special tokens the tokenizer adds (Gemma's `<bos>`).
    func encode(_ text: String) -> [Int]
    /// The text of `ids`, special tokens included.
    func decode(_ ids: [Int]) -> String
}
