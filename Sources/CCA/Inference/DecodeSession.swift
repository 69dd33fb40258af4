/// One sequence being decoded through a language model: feed it a prompt, then tokens one at a time; it
/// keeps every layer's decode state.
public final class DecodeSession<Scalar: TensorScalar> {
    public let model: LanguageModel<Scalar>
    public let capacity: Int
    /// Tokens fed so far.
    public private(set) var length = 0
    private let states: [[DecodeState<Scalar>]]

    /// A session for at most `capacity` tokens; every layer's cache is allocated now.
    public init(model: LanguageModel<Scalar>, capacity: Int) throws {
        (self.model, self.capacity) = (model, capacity)
        states = try model.makeStates(capacity: capacity).map { [$0] }
    }

    /// Bytes held by all layers' decode states.
    public var bytes: Int { states.reduce(0) { $0 + $1[0].bytes } }

    /// Feeds `tokens` (a prompt chunk or one token) and returns the logits after the last of them.
    public func feed(_ tokens: [Int]) throws -> [Scalar] {
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        let (total, overflow) = length.addingReportingOverflow(tokens.count)
        guard !overflow, total <= capacity else {
            throw GenerationError.contextExceeded(requested: overflow ? Int.max : total, capacity: capacity)
        }
        let logits = try model.forward(tokens: tokens, layout: SequenceLayout(lengths: [tokens.count]), states: states).logits
        length = total
        return Array(logits.storage[((tokens.count - 1) * model.config.vocabSize)...])
    }
}

extension LanguageModel {
    /// A decoding session for one sequence of at most `capacity` tokens.
    public func makeSession(capacity: Int) throws -> DecodeSession<Scalar> { try DecodeSession(model: self, capacity: capacity) }
}

/// A generation request that cannot be served.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case contextExceeded(requested: Int, capacity: Int)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty; give at least one token of text"
        case let .contextExceeded(requested, capacity):
            return "\(requested) tokens requested but the maximum context is \(capacity); shorten the prompt or --max-tokens, or raise --max-context"
        }
    }
}
