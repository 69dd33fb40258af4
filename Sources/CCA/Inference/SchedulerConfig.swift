/// The limits of a ``Scheduler``.
public struct SchedulerConfig: Sendable, Equatable {
    /// Requests decoded together at most (each holds a slot of the engine).
    public var maxBatch: Int
    /// Requests that may wait while ``maxBatch`` others run; one more is refused at once with
    /// ``SchedulerError/queueFull(capacity:)``.
    public var queueCapacity: Int
    /// Prompt plus generated tokens of one request at most: the size of its slot.
    public var maxContext: Int
    /// A prompt is fed in pieces of this many tokens (the last may be shorter), one piece per step, so that a
    /// long prompt never holds up the requests that are decoding.
    public var prefillChunk: Int
    /// Tokens fed in one step at most: one per decoding request, and as many prompt pieces as fit beside them.
    public var stepTokens: Int

    public init(maxBatch: Int = 8, queueCapacity: Int = 32, maxContext: Int = 2048, prefillChunk: Int = 32, stepTokens: Int? = nil) {
        (self.maxBatch, self.queueCapacity, self.maxContext, self.prefillChunk) = (maxBatch, queueCapacity, maxContext, prefillChunk)
        self.stepTokens = stepTokens ?? maxBatch &- 1 &+ prefillChunk
    }

    /// Throws ``ConfigError`` unless every limit is positive (the queue may be empty) and a prompt piece
    /// always fits in a step beside a full batch of decoding requests.
    public func validate() throws(ConfigError) {
        for (name, value) in [("max batch", maxBatch), ("max context", maxContext), ("prefill chunk", prefillChunk), ("step tokens", stepTokens)]
            where value < 1 { throw .notPositive(name: name, value: value) }
        guard queueCapacity >= 0 else { throw .invalidValue(name: "queue", value: "\(queueCapacity)", expected: "a number >= 0") }
        let (needed, overflow) = maxBatch.addingReportingOverflow(prefillChunk - 1)
        guard !overflow, stepTokens >= needed else {
            throw .invalidValue(name: "step tokens", value: "\(stepTokens)",
                                expected: "at least max batch - 1 + prefill chunk = \(overflow ? "more than \(Int.max)" : "\(needed)"), so that a prompt piece fits beside a full batch")
        }
    }
}
