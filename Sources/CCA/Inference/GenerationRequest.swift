/// One completion to generate: the prompt's tokens, how many tokens to add at most, how to sample them
/// (the request's own ``Sampler``, seed included), and what ends the completion early.
public struct GenerationRequest: Sendable {
    /// Prompt token ids; at least one.
    public var prompt: [Int]
    /// Tokens to generate at most; at least one.
    public var maxTokens: Int
    /// Temperature, top-k, top-p and the random generator of this request alone.
    public var sampler: Sampler
    /// Texts that end the completion as soon as it contains one; the text returned stops before it.
    public var stopStrings: [String]
    /// Token ids that end the completion when sampled (an end-of-text token); they add no text.
    public var stopTokens: Set<Int>

    public init(prompt: [Int], maxTokens: Int, sampler: Sampler, stopStrings: [String] = [], stopTokens: Set<Int> = []) {
        (self.prompt, self.maxTokens, self.sampler) = (prompt, maxTokens, sampler)
        (self.stopStrings, self.stopTokens) = (stopStrings, stopTokens)
    }
}
