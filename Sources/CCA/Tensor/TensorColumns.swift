/// Column slices of tensors viewed as matrices `[rows, width]` (width: the last dimension): how layers
/// split fused projections into their parts and put gradients back together.
extension Tensor {
    /// Columns `range` of every row, as a new `[rows, range.count]` tensor.
    @_specialize(where Scalar == Float)
    public func columns(_ range: Range<Int>) -> Tensor {
        let width = shape.last!, rows = count / max(1, width)
        var result = [Scalar](repeating: 0, count: rows * range.count)
        for row in 0..<rows {
            for (index, column) in range.enumerated() { result[row * range.count + index] = storage[row * width + column] }
        }
        return Tensor(checked: [rows, range.count], result)
    }

    /// The tensors' rows side by side: `[rows, Σ widths]`. Every part must have the same number of rows.
    @_specialize(where Scalar == Float)
    public static func concatenatingColumns(_ parts: [Tensor]) -> Tensor {
        let widths = parts.map { $0.shape.last! }, total = widths.reduce(0, +)
        let rows = parts.first.map { $0.count / max(1, $0.shape.last!) } ?? 0
        var result = [Scalar](repeating: 0, count: rows * total)
        for row in 0..<rows {
            var column = 0
            for (part, width) in zip(parts, widths) {
                for i in 0..<width { result[row * total + column + i] = part.storage[row * width + i] }
                column += width
            }
        }
        return Tensor(checked: [rows, total], result)
    }
}
