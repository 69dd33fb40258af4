/// CCA's value shift: of the value row `[current | delayed]` (each `ek/2` wide), the delayed half is the
/// previous token's, so half the value heads see the token before. Its backward pass routes each row's
/// gradient back one token.
///
/// Each sequence of the layout starts from its own `previous` delayed row (zeros for a fresh sequence,
/// the last row of the chunk before when decoding), so packed documents never share values.
public enum ValueShift {
    /// `v` `[rows, ek]` from the projections `[rows, ek]` (`[current | delayed]` of the same token), and the
    /// last delayed row of every sequence (the `previous` of its next chunk).
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ projections: Tensor<S>, layout: SequenceLayout, previous: [[S]]?)
        -> (v: Tensor<S>, last: [[S]]) {
        let width = projections.shape.last!, half = width / 2
        var v = projections
        var last: [[S]] = []
        for (index, range) in layout.sequences.enumerated() {
            let start = previous?[index] ?? [S](repeating: 0, count: half)
            v.storage.withUnsafeMutableBufferPointer { v in projections.storage.withUnsafeBufferPointer { projections in
                let (v, projections) = (v.baseAddress!, projections.baseAddress!)
                for row in range {
                    let delayed = v + row * width + half
                    if row == range.lowerBound {
                        start.withUnsafeBufferPointer { delayed.update(from: $0.baseAddress!, count: half) }
                    } else {
                        delayed.update(from: projections + (row - 1) * width + half, count: half)
                    }
                }
            }}
            last.append(range.isEmpty ? start : Array(projections.storage[((range.upperBound - 1) * width + half)..<(range.upperBound * width)]))
        }
        return (v, last)
    }

    /// The gradient of the projections for `dv` `[rows, ek]`: row `r`'s delayed half receives row `r + 1`'s
    /// (zero for a sequence's last row, whose delayed value only the next chunk would read).
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dv: Tensor<S>, layout: SequenceLayout) -> Tensor<S> {
        let width = dv.shape.last!, half = width / 2
        var dProjections = dv
        for range in layout.sequences {
            for row in range {
                for c in 0..<half {
                    dProjections.storage[row * width + half + c] = row + 1 < range.upperBound
                        ? dv.storage[(row + 1) * width + half + c] : 0
                }
            }
        }
        return dProjections
    }
}
