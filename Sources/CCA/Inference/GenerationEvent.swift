/// What a request's stream delivers: one event per generated token, then one that ends it.
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token and the completion text that became final with it: empty while the text ends
    /// inside a character or in what may be the start of a stop string.
    case token(id: Int, text: String)
    /// The end of the completion: why, the text held back until now, and the token counts.
    case finished(reason: FinishReason, text: String, usage: TokenUsage)
}

/// Why a completion ended.
public enum FinishReason: String, Sendable, Equatable, CaseIterable {
    /// It reached its maximum number of tokens.
    case length
    /// It produced a stop string or a stop token.
    case stop
    /// It was cancelled (its consumer went away) before either.
    case cancelled
}

/// The tokens a completion read and wrote.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int) { (self.promptTokens, self.completionTokens) = (promptTokens, completionTokens) }
}
