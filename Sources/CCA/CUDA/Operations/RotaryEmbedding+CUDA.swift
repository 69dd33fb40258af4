import RealModule

/// A ``RotaryEmbedding`` on the device: its inverse frequencies, in double as the CPU path computes them,
/// and its forward and backward passes (`rotary.cu`).
struct DeviceRotary: Sendable {
    let dimension: Int
    let inverseFrequencies: DeviceBuffer

    init(_ rotary: RotaryEmbedding, context: CUDAContext) throws {
        dimension = rotary.rotaryDim
        // The CPU path's own frequencies, so both paths rotate by identical angles.
        inverseFrequencies = try context.upload(rotary.inverseFrequencies)
    }

    /// ``RotaryEmbedding/forward(_:positions:heads:headStride:offset:)`` in place on channels
    /// `offset ..< offset + rotaryDim` of each head of `data`, viewed as rows of `heads` heads `headStride`
    /// elements apart; row `r` is at position `r % sequenceLength`, or at `positions[r]` when given (int32,
    /// one per row: positions within packed documents). With `keys` (rows of `keyHeads` heads, the same
    /// rows, head stride and positions: the keys beside the queries), both in one launch.
    func forward(_ data: DeviceMatrix, heads: Int, keys: (matrix: DeviceMatrix, heads: Int)? = nil, headStride: Int,
                 offset: Int = 0, sequenceLength: Int, positions: DeviceBuffer? = nil, context: CUDAContext) throws {
        try rotate(data, heads: heads, keys: keys, headStride: headStride, offset: offset, sequenceLength: sequenceLength,
                   positions: positions, sineSign: 1, context: context)
    }

    /// The same with row `r` at position `positions[r]` (int32 on the device, one per row of `data`): the new
    /// rows of a decode step, each sequence at its own position.
    func forward(_ data: DeviceMatrix, heads: Int, headStride: Int, offset: Int = 0, positions: DeviceBuffer,
                 context: CUDAContext) throws {
        try rotate(data, heads: heads, keys: nil, headStride: headStride, offset: offset, sequenceLength: 1, positions: positions,
                   sineSign: 1, context: context)
    }

    /// ``RotaryEmbedding/backward(_:positions:heads:headStride:offset:)``: the gradient rotated back in place
    /// (with `keys`, theirs too). Rows at `positions` as the forward pass had them.
    func backward(_ gradient: DeviceMatrix, heads: Int, keys: (matrix: DeviceMatrix, heads: Int)? = nil, headStride: Int,
                  offset: Int = 0, sequenceLength: Int, positions: DeviceBuffer? = nil, context: CUDAContext) throws {
        try rotate(gradient, heads: heads, keys: keys, headStride: headStride, offset: offset, sequenceLength: sequenceLength,
                   positions: positions, sineSign: -1, context: context)
    }

    private func rotate(_ data: DeviceMatrix, heads: Int, keys: (matrix: DeviceMatrix, heads: Int)?, headStride: Int, offset: Int,
                        sequenceLength: Int, positions: DeviceBuffer?, sineSign: Float, context: CUDAContext) throws {
        precondition(keys.map { $0.matrix.rows == data.rows && $0.matrix.precision == data.precision } ?? true,
                     "rotary: keys of \(keys?.matrix.rows ?? 0) rows beside \(data.rows) rows")
        let half = dimension / 2
        var addresses = [data.address], strides = [data.stride, headStride, offset]
        if let keys { (addresses, strides) = (addresses + [keys.matrix.address], strides + [keys.matrix.stride]) }
        let step = CUDAContext.elementsPerStep(width: half, addresses: addresses, strides: strides)
        let threads = data.rows * half / step  // one a row and `step` pairs, for all the row's heads
        guard threads > 0, heads > 0 else { return }
        let kernel = try context.kernel("rotary_embedding", in: .rotary, precision: data.precision)
        try context.launch(kernel, grid: ((threads + 255) / 256, 1, 1), threads: 256,
                           [data.address, Int32(data.rows), Int32(sequenceLength), positions?.address ?? 0, Int32(heads),
                            Int64(data.stride), Int32(headStride), Int32(offset), Int32(dimension), inverseFrequencies.address,
                            sineSign, keys?.matrix.address ?? 0, Int32(keys?.heads ?? 0), Int64(keys?.matrix.stride ?? 0),
                            Int32(step)])
    }
}
