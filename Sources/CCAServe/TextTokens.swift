/// How the server turns text into token ids and back.
///
/// Today one token per UTF-8 byte, as `cca train` and `cca generate` use. A model trained with a
/// `tokenizer.json` will come with its tokenizer's encode and decode here, and its end-of-text token as a stop.
public struct TextTokens: Sendable {
    public let encode: @Sendable (String) -> [Int]
    public let decode: @Sendable ([Int]) -> String
    /// Tokens that end a completion when sampled (a tokenizer's end of text).
    public let stopTokens: Set<Int>

    public init(encode: @escaping @Sendable (String) -> [Int], decode: @escaping @Sendable ([Int]) -> String, stopTokens: Set<Int> = []) {
        (self.encode, self.decode, self.stopTokens) = (encode, decode, stopTokens)
    }

    /// One token per byte; ids are bytes, and a sequence that is not UTF-8 reads with U+FFFD in its place.
    public static let bytes = TextTokens(encode: { $0.utf8.map(Int.init) },
                                         decode: { String(decoding: $0.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) })
}
