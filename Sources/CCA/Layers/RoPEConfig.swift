/// Rotary embedding settings shared by every attention kind.
public struct RoPEConfig: Sendable, Equatable, Codable {
    /// Base of the inverse frequencies.
    public var theta: Double
    /// Fraction of each head's channels that rotate: `rotaryDim = Int(headDim · fraction)`, truncated as in
    /// transformers (the spec says round; the reference truncates, and we follow the reference).
    public var fraction: Double

    public init(theta: Double = 5_000_000, fraction: Double = 0.5) {
        self.theta = theta
        self.fraction = fraction
    }

    /// The embedding for heads of `headDim` channels, or an error when the rotary width would be odd.
    public func embedding(headDim: Int) throws -> RotaryEmbedding {
        guard fraction >= 0, fraction <= 1 else { throw ConfigError.ropeFractionOutOfRange(fraction) }
        let rotaryDim = Int(Double(headDim) * fraction)
        guard rotaryDim % 2 == 0 else {
            throw ConfigError.oddRotaryWidth(headDim: headDim, fraction: fraction, rotaryDim: rotaryDim)
        }
        guard theta > 0 else { throw ConfigError.invalidValue(name: "rope_theta", value: "\(theta)", expected: "a positive number") }
        return RotaryEmbedding(rotaryDim: rotaryDim, theta: theta)
    }
}
