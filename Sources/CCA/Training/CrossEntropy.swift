import RealModule

/// Mean softmax cross-entropy over the positions that have a target, and its gradient.
enum CrossEntropy {
    /// Target value of positions that do not count (prompt tokens of the recall task).
    static let ignored = -1

    /// - Parameters:
    ///   - logits: `[rows, vocab]`.
    ///   - targets: `rows` class indices, or ``ignored``.
    /// - Returns: the mean loss over counted rows and `dlogits` for it (zero rows where ignored).
    static func lossAndGradient<S: TrainingScalar>(logits: [S], targets: [Int], vocab: Int) -> (loss: S, dLogits: [S]) {
        let counted = targets.filter { $0 != ignored }.count
        var dLogits = [S](repeating: 0, count: logits.count)
        guard counted > 0 else { return (0, dLogits) }
        var loss: S = 0
        let weight = 1 / S(counted)
        for (r, target) in targets.enumerated() where target != ignored {
            let row = r * vocab
            var maximum = -S.infinity
            for c in 0..<vocab { maximum = max(maximum, logits[row + c]) }
            var sum: S = 0
            for c in 0..<vocab { sum += S.exp(logits[row + c] - maximum) }
            loss += (S.log(sum) + maximum - logits[row + target]) * weight
            for c in 0..<vocab { dLogits[row + c] = S.exp(logits[row + c] - maximum) / sum * weight }
            dLogits[row + target] -= weight
        }
        return (loss, dLogits)
    }
}
