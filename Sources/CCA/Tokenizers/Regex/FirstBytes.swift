/// The bytes a match from one instruction can start with: exact for ASCII, "maybe" for every non-ASCII lead
/// byte when any non-ASCII scalar may come first; `canBeEmpty` when a path reaches a zero-width test or the end
/// without consuming, in which case nothing is ruled out.
struct FirstBytes: Sendable {
    var low: UInt64 = 0, high: UInt64 = 0
    var nonASCII = false
    var canBeEmpty = false

    @inline(__always) func contains(_ byte: UInt8) -> Bool {
        if byte < 64 { return low >> UInt64(byte) & 1 != 0 }
        if byte < 128 { return high >> UInt64(byte - 64) & 1 != 0 }
        return nonASCII
    }

    private mutating func add(_ scalar: UInt32) {
        if scalar < 64 { low |= 1 << UInt64(scalar) } else if scalar < 128 { high |= 1 << UInt64(scalar - 64) } else { nonASCII = true }
    }

    private mutating func formUnion(_ other: FirstBytes) {
        low |= other.low; high |= other.high
        nonASCII = nonASCII || other.nonASCII
        canBeEmpty = canBeEmpty || other.canBeEmpty
    }

    /// The first bytes of every instruction, following jumps and splits to the instructions that consume.
    static func table(_ code: [RegexInstruction], _ sets: [ScalarSet]) -> [FirstBytes] {
        code.indices.map { start in
            var result = FirstBytes()
            var visited = Set<Int>()
            var pending = [start]
            while let pc = pending.popLast() {
                guard visited.insert(pc).inserted else { continue }
                switch code[pc] {
                case let .scalar(value): result.add(value)
                case let .foldedScalar(value):
                    // Any scalar folding to `value`: its ASCII forms, and possibly non-ASCII ones (ſ, K).
                    for ascii in UInt32(0)..<128 where simpleCaseFold(ascii) == value { result.add(ascii) }
                    result.nonASCII = true
                case let .set(index):
                    for ascii in UInt32(0)..<128 where sets[index].contains(ascii) { result.add(ascii) }
                    result.nonASCII = true
                case .anyButNewline:
                    result.formUnion(FirstBytes(low: ~(1 << 10), high: ~0, nonASCII: true))
                case let .split(first, second): pending += [first, second]
                case let .jump(target): pending.append(target)
                case .lookahead, .lookaheadSucceeded, .assertion, .match: result.canBeEmpty = true
                }
            }
            return result
        }
    }
}
