extension ValueShift {
    /// ``backward(_:layout:)`` on the GPU (`cca_values.cu`), for `B` sequences of `sequenceLength` rows:
    /// the gradient of the value projections for `dv` `[B·S, ek]`, written into `dProjections` (`ek`
    /// columns: the value columns of the fused projection's gradient `[B·S, ct + ek]`). With `shifted`, row
    /// `t`'s delayed half receives row `t + 1`'s (zero for a sequence's last row); without, a copy (a layer
    /// with no value shift). With `positions` (int32 `[B·S]`, positions within packed documents), a
    /// document's last row passes nothing back through its delayed half.
    static func backward(_ dv: DeviceTensor, sequenceLength: Int, positions: DeviceBuffer? = nil, shifted: Bool,
                         into dProjections: DeviceMatrix, context: CUDAContext) throws {
        let width = dv.shape.last!, rows = dv.count / max(1, width)
        precondition(dProjections.rows == rows && dProjections.columns == width && dProjections.precision == dv.precision
                     && width % 2 == 0 && (rows == 0 || sequenceLength > 0 && rows % sequenceLength == 0),
                     "value shift backward: dv \(dv.shape) into \(dProjections.rows)x\(dProjections.columns), S = \(sequenceLength)")
        let kernel = try context.kernel("cca_values_backward", in: .ccaValues, precision: dv.precision)
        try context.launchElementwise(kernel, count: rows * width,
                                      [dv.address, dProjections.address, Int64(rows), Int32(dProjections.stride), Int32(0),
                                       Int32(width), positions?.address ?? 0, Int32(sequenceLength), Int32(shifted ? 1 : 0)])
    }
}
