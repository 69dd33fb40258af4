import RealModule

/// Mean softmax cross-entropy over the rows that have a target, and its gradient.
public enum CrossEntropy {
    /// Target value of rows that do not count (prompt tokens of the recall task, padding).
    public static let ignored = -1

    /// The mean loss over counted rows of `logits` `[rows, vocab]` (0 when no row counts).
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(logits: [S], targets: [Int], vocab: Int) -> S {
        let counted = targets.filter { $0 != ignored }.count
        guard counted > 0 else { return 0 }
        var loss: S = 0
        for (r, target) in targets.enumerated() where target != ignored {
            loss += logSumExp(logits, row: r * vocab, vocab: vocab) - logits[r * vocab + target]
        }
        return loss / S(counted)
    }

    /// The mean loss and `dlogits` for it (zero rows where ignored): `(softmax − onehot) / counted`.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(logits: [S], targets: [Int], vocab: Int) -> (loss: S, dLogits: [S]) {
        let counted = targets.filter { $0 != ignored }.count
        var dLogits = [S](repeating: 0, count: logits.count)
        guard counted > 0 else { return (0, dLogits) }
        var loss: S = 0
        let weight = 1 / S(counted)
        for (r, target) in targets.enumerated() where target != ignored {
            let row = r * vocab
            let lse = logSumExp(logits, row: row, vocab: vocab)
            loss += (lse - logits[row + target]) * weight
            for c in 0..<vocab { dLogits[row + c] = S.exp(logits[row + c] - lse) * weight }
            dLogits[row + target] -= weight
        }
        return (loss, dLogits)
    }

    /// `log Σ exp` of one row, NaN when the row holds NaN.
    @inline(__always)
    static func logSumExp<S: TensorScalar>(_ logits: [S], row: Int, vocab: Int) -> S {
        var maximum = -S.infinity
        for c in 0..<vocab where logits[row + c] > maximum || logits[row + c].isNaN { maximum = logits[row + c] }
        guard maximum.isFinite else { return maximum }
        var sum: S = 0
        for c in 0..<vocab { sum += S.exp(logits[row + c] - maximum) }
        return S.log(sum) + maximum
    }
}
