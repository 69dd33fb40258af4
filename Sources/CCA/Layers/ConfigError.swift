/// A layer configuration that cannot work, with what to change.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case notPositive(name: String, value: Int)
    case headsDoNotDivide(queryHeads: Int, keyValueHeads: Int)
    case widthNotDivisible(hiddenSize: Int, heads: Int)
    case oddValueWidth(valueWidth: Int)
    case oddRotaryWidth(headDim: Int, fraction: Double, rotaryDim: Int)
    case ropeFractionOutOfRange(Double)
    case convolutionCount(Int)
    case unknownAttention(String)
    case invalidValue(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .notPositive(name, value):
            return "\(name) must be a positive integer, got \(value)"
        case let .headsDoNotDivide(queryHeads, keyValueHeads):
            return "num_attention_heads (\(queryHeads)) must be a multiple of num_key_value_heads (\(keyValueHeads))"
        case let .widthNotDivisible(hiddenSize, heads):
            return "hidden_size \(hiddenSize) is not divisible by \(heads) heads; pick head counts that divide it or set head_dim"
        case let .oddValueWidth(valueWidth):
            return "value shift splits the value width num_key_value_heads·head_dim = \(valueWidth) in halves, so it must be even"
        case let .oddRotaryWidth(headDim, fraction, rotaryDim):
            return "partial_rotary_factor \(fraction) of head_dim \(headDim) gives \(rotaryDim) rotary channels; RoPE rotates channel pairs, so pick a fraction giving an even width"
        case let .ropeFractionOutOfRange(fraction):
            return "partial_rotary_factor must lie in [0, 1], got \(fraction)"
        case let .convolutionCount(count):
            return "CCA takes 0, 1 or 2 convolutions, got \(count)"
        case let .unknownAttention(name):
            return "unknown attention kind '\(name)'; use one of mha, gqa, mla, cca"
        case let .invalidValue(name, value, expected):
            return "\(name) = \(value) is invalid: expected \(expected)"
        }
    }

    static func requirePositive(_ pairs: KeyValuePairs<String, Int>) throws {
        for (name, value) in pairs where value <= 0 { throw ConfigError.notPositive(name: name, value: value) }
    }
}
