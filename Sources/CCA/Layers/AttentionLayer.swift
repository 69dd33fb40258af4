/// An attention layer of any kind: its weights under their interchange names, one forward pass for every
/// use, and its backward pass.
///
/// The one ``forward(_:layout:states:keep:)`` serves inference, prefill, chunked decoding and training:
/// without states each sequence of the layout starts fresh at position 0 (packed documents never see each
/// other); with states each continues its own (cache, position, and CCA's convolution and value state)
/// and advances it; with `keep` it returns what ``backward(_:_:)`` needs.
public protocol AttentionLayer<Scalar>: Sendable {
    associatedtype Scalar: TensorScalar
    associatedtype Config: AttentionConfig
    /// What the backward pass reads, kept by a forward pass with `keep`.
    associatedtype Saved: Sendable

    /// The layer's configuration.
    var config: Config { get }
    /// Model width E (input and output features).
    var hiddenSize: Int { get }
    /// Every parameter under the name it has in the reference (transformers) module.
    var weights: [String: Tensor<Scalar>] { get }

    /// A fresh decode state for one sequence of at most `capacity` tokens; its cache is allocated now.
    func makeState(capacity: Int) throws -> DecodeState<Scalar>

    /// `y` `[rows, E]` (x's shape) for `x` `[rows, E]` or `[B, S, E]` laid out by `layout`.
    ///
    /// Padded rows of `x` are zeroed before anything else, padded keys are never attended, and padded
    /// output rows are 0. With `states` (one per sequence), each sequence continues its state; on any
    /// error no state has changed.
    func forward(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keep: Bool) throws
        -> (y: Tensor<Scalar>, saved: Saved?)

    /// `dx` for the output gradient `dy`, and the gradient of every weight under its name in ``weights``.
    func backward(_ dy: Tensor<Scalar>, _ saved: Saved) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>])
}

extension AttentionLayer {
    /// Number of scalar parameters.
    public var parameterCount: Int { weights.values.reduce(0) { $0 + $1.count } }

    /// Runs the layer on `x` `[B, S, E]`, with an optional `[B, S]` padding mask (1 token, 0 padding).
    public func forward(_ x: Tensor<Scalar>, mask: Tensor<Scalar>? = nil) throws -> Tensor<Scalar> {
        guard x.rank == 3 else { throw ShapeError.rank(name: "input x", expected: 3, actual: x.shape) }
        let layout = try SequenceLayout(batch: x.shape[0], length: x.shape[1], mask: mask)
        return try forward(x, layout: layout, states: nil, keep: false).y
    }

    /// The forward pass over fresh sequences and a closure running the matching backward pass: lets a
    /// model hold layers of different kinds (and saved types) side by side.
    public func pullback(_ x: Tensor<Scalar>, layout: SequenceLayout) throws
        -> (y: Tensor<Scalar>, backward: (Tensor<Scalar>) throws -> (dx: Tensor<Scalar>, grads: [String: Tensor<Scalar>])) {
        let (y, saved) = try forward(x, layout: layout, states: nil, keep: true)
        guard let saved else { throw DecodeError.statesWithBackward }
        return (y, { try backward($0, saved) })
    }

    /// Continues each sequence with its chunk `[Sᵢ, E]` (lengths may differ, or be 0) in one batched call,
    /// advancing `states`, and returns the outputs `[Sᵢ, E]`.
    public func decode(_ chunks: [Tensor<Scalar>], states: [DecodeState<Scalar>]) throws -> [Tensor<Scalar>] {
        for (index, chunk) in chunks.enumerated() {
            guard chunk.rank == 2, chunk.shape[1] == hiddenSize else {
                throw ShapeError.mismatch(name: "chunk \(index)", expected: [chunk.shape.first ?? 0, hiddenSize], actual: chunk.shape)
            }
        }
        let layout = try SequenceLayout(lengths: chunks.map { $0.shape[0] })
        let x = Tensor(checked: [layout.rows, hiddenSize], chunks.flatMap(\.storage))
        let y = try forward(x, layout: layout, states: states, keep: false).y
        return layout.sequences.map { Tensor(checked: [$0.count, hiddenSize], Array(y.storage[($0.lowerBound * hiddenSize)..<($0.upperBound * hiddenSize)])) }
    }

    /// Runs one `[S, E]` sequence through a fresh decode state in chunks of the given lengths and returns
    /// the `[S, E]` outputs stacked: the decode path of `cca forward --chunks`.
    public func forwardInChunks(_ x: Tensor<Scalar>, chunkLengths: [Int]) throws -> Tensor<Scalar> {
        let length = x.shape[0]
        guard SequenceLayout.total(chunkLengths) == length else { throw DecodeError.chunksDoNotSum(chunks: chunkLengths, length: length) }
        let states = [try makeState(capacity: length)]
        var outputs: [Scalar] = []
        var start = 0
        for chunkLength in chunkLengths {
            let chunk = Tensor(checked: [chunkLength, hiddenSize],
                               Array(x.storage[(start * hiddenSize)..<((start + chunkLength) * hiddenSize)]))
            outputs += try decode([chunk], states: states)[0].storage
            start += chunkLength
        }
        return Tensor(checked: [length, hiddenSize], outputs)
    }

    /// Checks `x` against the layout and the states against the layer (reserving room for every chunk,
    /// so that a failure leaves them all unchanged), and returns `x` with its padded rows zeroed.
    func prepare(_ x: Tensor<Scalar>, layout: SequenceLayout, states: [DecodeState<Scalar>]?, keyWidth: Int,
                 valueWidth: Int, carry: Int) throws -> Tensor<Scalar> {
        try layout.validate(x, width: hiddenSize)
        if let states {
            guard states.count == layout.sequences.count else {
                throw DecodeError.stateCount(sequences: layout.sequences.count, states: states.count)
            }
            guard layout.keyValid == nil else { throw DecodeError.maskWithChunks }
            for (state, range) in zip(states, layout.sequences) {
                guard state.keyWidth == keyWidth, state.valueWidth == valueWidth, state.carry.count == carry else {
                    throw DecodeError.stateMismatch(layer: String(describing: Self.self))
                }
                try state.reserve(range.count)
            }
        }
        return layout.zeroingPadding(x)
    }

    /// Attention of the layout's queries against the states' caches (already holding this call's keys),
    /// or, without states, of each sequence against its own keys.
    func attend(q: Tensor<Scalar>, k: Tensor<Scalar>, v: Tensor<Scalar>, layout: SequenceLayout,
                states: [DecodeState<Scalar>]?, heads: Attention.Heads, valuesInKeys: Bool = false) -> Attention.Saved<Scalar> {
        guard let states else { return Attention.forward(q: q, k: k, v: v, layout: layout, heads: heads) }
        var out = Tensor<Scalar>(zeros: [layout.rows, heads.queryHeads * heads.valueDim])
        var lse = Tensor<Scalar>(zeros: [layout.rows, heads.queryHeads])
        let (qStride, outStride) = (heads.queryHeads * heads.keyDim, heads.queryHeads * heads.valueDim)
        if layout.rows > 0 {
            q.storage.withUnsafeBufferPointer { qs in out.storage.withUnsafeMutableBufferPointer { outs in
            lse.storage.withUnsafeMutableBufferPointer { lses in
                let sequences = zip(layout.sequences, states).map { range, state in
                    Attention.Sequence<Scalar>(
                        q: qs.baseAddress! + range.lowerBound * qStride, qStride: qStride,
                        k: state.keys, kStride: state.keyWidth,
                        v: valuesInKeys ? state.keys : state.values, vStride: valuesInKeys ? state.keyWidth : state.valueWidth,
                        out: outs.baseAddress! + range.lowerBound * outStride, outStride: outStride,
                        lse: lses.baseAddress! + range.lowerBound * heads.queryHeads, queries: range.count,
                        keyOffset: state.length - range.count, keyValid: nil)
                }
                Attention.forward(sequences, heads: heads)
            }}}
        }
        return Attention.Saved(out: out, lse: lse)
    }
}

/// A linear weight `[out, in]` drawn like PyTorch's default scale (std `1/sqrt(in)`).
func randomLinearWeight(_ outFeatures: Int, _ inFeatures: Int, seed: UInt64) -> Tensor<Float> {
    Tensor(randomNormal: [outFeatures, inFeatures], std: 1 / Float(inFeatures).squareRoot(), seed: seed)
}

/// Random weights for every name in `shapes`: `draw(name, shape, seed)` with a seed of its own per name,
/// so each layer is reproducible from one seed; linear weights by default.
func randomWeights(_ shapes: [String: [Int]], seed: UInt64,
                   draw: (String, [Int], UInt64) -> Tensor<Float>? = { _, _, _ in nil }) -> [String: Tensor<Float>] {
    var weights: [String: Tensor<Float>] = [:]
    for (index, (name, shape)) in shapes.sorted(by: { $0.key < $1.key }).enumerated() {
        let seed = seed &+ UInt64(index + 1)
        weights[name] = draw(name, shape, seed) ?? randomLinearWeight(shape[0], shape[1], seed: seed)
    }
    return weights
}
