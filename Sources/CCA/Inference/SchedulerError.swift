/// A request the ``Scheduler`` refuses.
public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    /// The queue of waiting requests is full.
    case queueFull(capacity: Int)
    case emptyPrompt
    case maxTokensNotPositive(Int)
    /// Prompt plus generated tokens exceed the maximum context.
    case contextExceeded(promptTokens: Int, maxTokens: Int, maxContext: Int)
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case emptyStopString

    public var description: String {
        switch self {
        case let .queueFull(capacity):
            return "the server is busy: \(capacity) requests are already waiting; retry later"
        case .emptyPrompt: return "the prompt is empty; give at least one token of text"
        case let .maxTokensNotPositive(value): return "max_tokens is \(value); ask for at least 1 token"
        case let .contextExceeded(prompt, maxTokens, maxContext):
            return "the prompt's \(prompt) tokens plus max_tokens \(maxTokens) exceed the maximum context of \(maxContext) tokens; shorten the prompt or lower max_tokens"
        case let .tokenOutOfRange(token, vocabSize):
            return "prompt token \(token) is outside the model's vocabulary of \(vocabSize) ids"
        case .emptyStopString: return "a stop string is empty; give stop strings of at least one character"
        }
    }
}
