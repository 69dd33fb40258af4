import CCA

/// How the server turns text into token ids and back: the checkpoint's tokenizer, or one token per UTF-8
/// byte for a checkpoint trained without one.
public struct TextTokens: Sendable {
    public let encode: @Sendable (String) -> [Int]
    public let decode: @Sendable ([Int]) -> String
    /// Tokens that end a completion when sampled (a tokenizer's end of text).
    public let stopTokens: Set<Int>

    public init(encode: @escaping @Sendable (String) -> [Int], decode: @escaping @Sendable ([Int]) -> String, stopTokens: Set<Int> = []) {
        (self.encode, self.decode, self.stopTokens) = (encode, decode, stopTokens)
    }

    /// The ids of `tokenizer`: prompts encoded with its special tokens (as `cca data prepare` encodes
    /// training text), completions decoded without them, and its end-of-text token a stop.
    public init(tokenizer: any Tokenizer) {
        self.init(encode: { tokenizer.encode($0) }, decode: { tokenizer.decode($0, skipSpecialTokens: true) },
                  stopTokens: tokenizer.eosTokenID.map { [$0] } ?? [])
    }

    /// One token per byte; ids are bytes, and a sequence that is not UTF-8 reads with U+FFFD in its place.
    public static let bytes = TextTokens(tokenizer: ByteTokenizer())
}
