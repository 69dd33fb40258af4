extension DeviceRotary {
    /// ``forward(_:heads:headStride:offset:sequenceLength:context:)`` with row `r` at position `positions[r]`
    /// (int32 on the device, one per row of `data`): the new rows of a decode step (`decode_rotary.cu`).
    func forward(_ data: DeviceMatrix, heads: Int, headStride: Int, offset: Int = 0, positions: DeviceBuffer,
                 context: CUDAContext) throws {
        let pairs = data.rows * heads * dimension / 2
        guard pairs > 0 else { return }
        let kernel = try context.kernel("decode_rotary", in: .decodeRotary, precision: data.precision)
        try context.launch(kernel, grid: ((pairs + 255) / 256, 1, 1), threads: 256,
                           [data.address, positions.address, Int32(data.rows), Int32(heads), Int64(data.stride),
                            Int32(headStride), Int32(offset), Int32(dimension), inverseFrequencies.address])
    }
}
