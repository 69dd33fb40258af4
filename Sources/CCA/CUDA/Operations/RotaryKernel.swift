import RealModule

extension CUDAContext {
    /// Applies `rotary` in place to channels `offset ..< offset + rotaryDim` of each head of `data`, viewed
    /// as rows of `heads` heads `headStride` elements apart; row `r` is at position `r % sequenceLength`.
    ///
    /// With `inverse`, rotates back by the same angles: ``RotaryEmbedding/backward(_:positions:heads:headStride:offset:)``,
    /// the gradient through the rotation, on strided heads alike.
    func rotate(_ data: DeviceMatrix, heads: Int, headStride: Int, offset: Int, sequenceLength: Int,
                rotary: DeviceRotary, inverse: Bool = false) throws {
        let pairs = data.rows * heads * rotary.dimension / 2
        guard pairs > 0 else { return }
        let kernel = try self.kernel("rotary_embedding", in: .rotary, precision: data.precision)
        try launch(kernel, grid: ((pairs + 255) / 256, 1, 1), threads: 256,
                   [data.address, Int32(data.rows), Int32(sequenceLength), Int32(heads), Int64(data.stride),
                    Int32(headStride), Int32(offset), Int32(rotary.dimension), rotary.inverseFrequencies.address,
                    Int32(inverse ? 1 : 0)])
    }
}

/// A ``RotaryEmbedding``'s inverse frequencies on the device, in double as the CPU path computes them.
struct DeviceRotary: Sendable {
    let dimension: Int
    let inverseFrequencies: DeviceBuffer

    init(_ rotary: RotaryEmbedding, context: CUDAContext) throws {
        dimension = rotary.rotaryDim
        // The CPU path's own frequencies, so both paths rotate by identical angles.
        inverseFrequencies = try context.upload(rotary.inverseFrequencies)
    }
}
