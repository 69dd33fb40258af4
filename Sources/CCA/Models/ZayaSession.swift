/// One sequence being decoded through a ``ZayaModel``: feed it a prompt, then one token at a time; it keeps
/// every layer's decode state (latent cache, convolution history, delayed value) and runs the LM head on
/// the last token only.
public final class ZayaSession {
    public let model: ZayaModel
    public let capacity: Int
    /// Tokens fed so far.
    public private(set) var length = 0
    private let states: [[DecodeState<Float>]]

    /// A session for at most `capacity` tokens; every layer's cache is allocated now.
    public init(model: ZayaModel, capacity: Int) throws {
        (self.model, self.capacity) = (model, capacity)
        states = try model.makeStates(sequences: 1, capacity: capacity)
    }

    /// Bytes held by all layers' decode states.
    public var bytes: Int { states.reduce(0) { $0 + $1[0].bytes } }

    /// Feeds `tokens` (a prompt chunk or one token) and returns the logits `[vocab]` after the last of them.
    public func feed(_ tokens: [Int]) throws -> [Float] {
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        let (total, overflow) = length.addingReportingOverflow(tokens.count)
        guard !overflow, total <= capacity else {
            throw GenerationError.contextExceeded(requested: overflow ? Int.max : total, capacity: capacity)
        }
        let hidden = try model.hiddenStates(tokens: tokens, layout: SequenceLayout(lengths: [tokens.count]), states: states)
        length = total
        let e = model.config.hiddenSize
        return model.logits(Tensor(checked: [1, e], Array(hidden.storage[((tokens.count - 1) * e)...]))).storage
    }
}
