import RealModule

/// Picks the next token from logits: temperature, then top-k, then top-p (nucleus), then a draw.
public struct Sampler: Sendable {
    /// 0 means greedy (always the most likely token).
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (nil or 1: all).
    public var topP: Float?
    private var generator: SplitMix64

    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0) throws {
        guard temperature >= 0, temperature.isFinite else {
            throw ConfigError.invalidValue(name: "temperature", value: "\(temperature)", expected: "a number >= 0 (0 = greedy)")
        }
        if let topK, topK < 1 { throw ConfigError.invalidValue(name: "top-k", value: "\(topK)", expected: "at least 1") }
        if let topP, !(topP > 0 && topP <= 1) { throw ConfigError.invalidValue(name: "top-p", value: "\(topP)", expected: "a number in (0, 1]") }
        (self.temperature, self.topK, self.topP) = (temperature, topK, topP)
        generator = SplitMix64(seed: seed)
    }

    /// The probabilities the draw uses (after temperature, top-k and top-p), for inspection and tests.
    public func distribution(_ logits: [Float]) -> [Float] {
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] }
        guard temperature > 0 else {
            var onehot = [Float](repeating: 0, count: logits.count)
            onehot[order[0]] = 1
            return onehot
        }
        if let topK { order = Array(order.prefix(topK)) }
        let top = logits[order[0]]
        var weights = order.map { Float.exp((logits[$0] - top) / temperature) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        if let topP {
            var cumulative: Float = 0, kept = 0
            while kept < weights.count, cumulative < topP {
                cumulative += weights[kept]
                kept += 1
            }
            order = Array(order.prefix(kept))
            weights = Array(weights.prefix(kept)).map { $0 / cumulative }
        }
        var probabilities = [Float](repeating: 0, count: logits.count)
        for (token, weight) in zip(order, weights) { probabilities[token] = weight }
        return probabilities
    }

    /// The uniform number in [0, 1) the next ``sample(_:)`` draws with, taken from the generator (the GPU
    /// sampler draws with it, so that a seeded sequence is the same there).
    mutating func nextDraw() -> Float { generator.nextUniform() }

    /// Draws a token.
    public mutating func sample(_ logits: [Float]) -> Int {
        let probabilities = distribution(logits)
        var draw = nextDraw(), last = 0
        for (token, probability) in probabilities.enumerated() where probability > 0 {
            last = token
            draw -= probability
            if draw < 0 { return token }
        }
        return last
    }
}
