import RealModule

/// Multi-query associative recall, the built-in task that needs attention: a sequence of key–value pairs,
/// a separator, then some of the keys again, each followed by its value. Only the values after the
/// queries are scored, so a model can beat chance (`ln(valueCount)`) only by looking the keys up.
///
/// Tokens are bytes, so the task shares the byte tokenizer's vocabulary: keys are lowercase letters,
/// values uppercase letters, the separator is `|`. Example with 3 pairs: `aXcYbZ|cYaX`.
public struct AssociativeRecall: Sendable, Equatable {
    public var pairs: Int, queries: Int, keyCount: Int, valueCount: Int

    public init(pairs: Int, queries: Int, keyCount: Int, valueCount: Int) {
        precondition(pairs <= keyCount && queries <= pairs && keyCount <= 26 && valueCount <= 26, "recall task too large")
        (self.pairs, self.queries, self.keyCount, self.valueCount) = (pairs, queries, keyCount, valueCount)
    }

    /// Tokens the model reads per example (the sequence minus its last token).
    public var length: Int { 2 * pairs + 1 + 2 * queries - 1 }

    /// The loss of a model that has not learnt the lookup: uniform over the values.
    public var chanceLoss: Double { Double.log(Double(valueCount)) }

    /// One example: `inputs` and `targets` of ``length``, targets ``CrossEntropy/ignored`` except at values
    /// following a query key.
    public func example(_ random: inout SplitMix64) -> (inputs: [Int], targets: [Int]) {
        var keys = Array(0..<keyCount)
        for i in 0..<pairs { keys.swapAt(i, i + Int(random.next() % UInt64(keyCount - i))) }
        let values = (0..<pairs).map { _ in Int(random.next() % UInt64(valueCount)) }
        var sequence: [Int] = []
        for i in 0..<pairs { sequence += [Self.key(keys[i]), Self.value(values[i])] }
        sequence.append(Self.separator)
        var order = Array(0..<pairs)
        for i in 0..<queries { order.swapAt(i, i + Int(random.next() % UInt64(pairs - i))) }
        var scored = [Bool](repeating: false, count: sequence.count)
        for i in order.prefix(queries) {
            sequence += [Self.key(keys[i]), Self.value(values[i])]
            scored += [false, true]
        }
        let inputs = Array(sequence.dropLast())
        let targets = (1..<sequence.count).map { scored[$0] ? sequence[$0] : CrossEntropy.ignored }
        return (inputs, targets)
    }

    static let separator = Int(UInt8(ascii: "|"))
    static func key(_ index: Int) -> Int { Int(UInt8(ascii: "a")) + index }
    static func value(_ index: Int) -> Int { Int(UInt8(ascii: "A")) + index }
}
