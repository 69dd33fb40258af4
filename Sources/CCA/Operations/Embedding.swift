/// Token embedding: a lookup of rows of the table `[vocab, E]`, and its backward pass (a scatter-add).
public enum Embedding {
    /// The rows of `table` for `tokens` → `[tokens.count, E]`.
    /// - Throws: ``EmbeddingError/tokenOutOfRange(token:vocabSize:)``.
    @_specialize(where S == Float)
    public static func forward<S: TensorScalar>(_ tokens: [Int], table: Tensor<S>) throws -> Tensor<S> {
        let (vocab, width) = (table.shape[0], table.shape[1])
        if let bad = tokens.first(where: { !(0..<vocab).contains($0) }) {
            throw EmbeddingError.tokenOutOfRange(token: bad, vocabSize: vocab)
        }
        var x = Tensor<S>(zeros: [tokens.count, width])
        for (row, token) in tokens.enumerated() {
            for c in 0..<width { x.storage[row * width + c] = table.storage[token * width + c] }
        }
        return x
    }

    /// Adds each row of `dx` `[tokens.count, E]` to its token's row of `dTable`.
    @_specialize(where S == Float)
    public static func backward<S: TensorScalar>(_ dx: Tensor<S>, tokens: [Int], dTable: inout Tensor<S>) {
        let width = dTable.shape[1]
        for (row, token) in tokens.enumerated() {
            for c in 0..<width { dTable.storage[token * width + c] += dx.storage[row * width + c] }
        }
    }
}

/// A token id that the vocabulary does not have.
public enum EmbeddingError: Error, CustomStringConvertible, Equatable {
    case tokenOutOfRange(token: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case let .tokenOutOfRange(token, vocabSize): "token \(token) is outside the model's vocabulary of \(vocabSize)"
        }
    }
}
