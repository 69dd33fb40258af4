/// How the rows of an activation `[rows, …]` divide into sequences, and which rows are padding.
///
/// Every layer and operation takes one: a `[B, S]` batch is `B` sequences of `S` rows; a packed training
/// batch is its documents back to back (each attends only within itself and starts from a fresh CCA
/// state); a decode step is each running sequence's new chunk, continuing that sequence's state.
public struct SequenceLayout: Sendable, Equatable {
    /// The rows of each sequence: contiguous, in order, covering `0..<rows`.
    public let sequences: [Range<Int>]
    /// Per row, `false` for padding: its input row is zeroed before anything else, it is never attended
    /// as a key, and its output row is 0. Nil when every row is a token.
    public let keyValid: [Bool]?

    /// Number of rows.
    public var rows: Int { sequences.last?.upperBound ?? 0 }

    /// The sum of non-negative `lengths`, added with overflow checks (values near `Int.max` would otherwise
    /// wrap to a plausible total); nil when one is negative or the sum overflows.
    public static func total(_ lengths: [Int]) -> Int? {
        var total = 0
        for length in lengths {
            let (sum, overflow) = total.addingReportingOverflow(length)
            guard length >= 0, !overflow else { return nil }
            total = sum
        }
        return total
    }

    /// Sequences of the given lengths back to back.
    public init(lengths: [Int], keyValid: [Bool]? = nil) throws {
        var start = 0
        var sequences: [Range<Int>] = []
        for length in lengths {
            guard length >= 0 else { throw ShapeError.mismatch(name: "sequence length", expected: [0], actual: [length]) }
            let (end, overflow) = start.addingReportingOverflow(length)
            guard !overflow else { throw ShapeError.elementCount(shape: lengths, count: start) }
            sequences.append(start..<end)
            start = end
        }
        if let keyValid, keyValid.count != start {
            throw ShapeError.mismatch(name: "mask", expected: [start], actual: [keyValid.count])
        }
        self.sequences = sequences
        self.keyValid = keyValid.flatMap { $0.allSatisfy { $0 } ? nil : $0 }
    }

    /// `batch` sequences of `length` rows each.
    public init(batch: Int, length: Int, keyValid: [Bool]? = nil) throws {
        guard batch >= 0, length >= 0 else { throw ShapeError.mismatch(name: "batch", expected: [0, 0], actual: [batch, length]) }
        try self.init(lengths: [Int](repeating: length, count: batch), keyValid: keyValid)
    }

    /// `batch` sequences of `length` rows with a `[B, S]` padding mask of 1 (token) and 0 (padding).
    /// - Throws: ``ShapeError`` for a mask of another shape, ``MaskError`` for a value other than 0 or 1.
    public init<S: TensorScalar>(batch: Int, length: Int, mask: Tensor<S>?) throws {
        guard let mask else { try self.init(batch: batch, length: length); return }
        try mask.requireShape([batch, length], "mask")
        var flags = [Bool](repeating: true, count: mask.count)
        for (index, value) in mask.storage.enumerated() {
            switch value {
            case 1: continue
            case 0: flags[index] = false
            default: throw MaskError.notBinary(index: index, value: Double(value))
            }
        }
        try self.init(batch: batch, length: length, keyValid: flags)
    }

    /// Whether row `row` is a token (not padding).
    @inline(__always)
    public func isValid(_ row: Int) -> Bool { keyValid?[row] ?? true }

    /// The position of every row: sequence `i` starts at `firstPositions[i]` (0 when nil).
    public func positions(firstPositions: [Int]? = nil) -> [Int] {
        var positions = [Int](repeating: 0, count: rows)
        for (index, range) in sequences.enumerated() {
            let first = firstPositions?[index] ?? 0
            for row in range { positions[row] = first + row - range.lowerBound }
        }
        return positions
    }

    /// `x` `[rows, width…]` with the rows of padding set to 0.
    func zeroingPadding<S: TensorScalar>(_ x: Tensor<S>) -> Tensor<S> {
        guard let keyValid else { return x }
        var y = x
        let width = x.count / max(1, rows)
        for row in 0..<rows where !keyValid[row] {
            for i in 0..<width { y.storage[row * width + i] = 0 }
        }
        return y
    }

    /// Throws unless `x` has `rows` rows of `width`: shape `[rows, width]` or `[B, S, width]` with `B·S = rows`.
    func validate<S: TensorScalar>(_ x: Tensor<S>, width: Int, name: String = "input x") throws {
        guard x.rank >= 2, x.shape.last == width, x.count == rows * width else {
            let expected = x.rank == 3 ? [x.shape[0], x.shape[1], width] : [rows, width]
            throw ShapeError.mismatch(name: name, expected: expected, actual: x.shape)
        }
    }
}

/// A padding mask that is not made of 0s and 1s.
public enum MaskError: Error, CustomStringConvertible, Equatable {
    case notBinary(index: Int, value: Double)

    public var description: String {
        switch self {
        case let .notBinary(index, value):
            return "mask element \(index) is \(value); a mask holds 1 for tokens and 0 for padding, nothing else"
        }
    }
}
