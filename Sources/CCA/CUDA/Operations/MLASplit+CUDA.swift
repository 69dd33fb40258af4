extension CUDAContext {
    /// MLA's per-head keys `[rows, H, dn + dr]` = `[k_nope ; k_rope]` and values `[rows, H, dv]`, from
    /// `keyValue` `[rows, H·(dn + dv)]` (kv_b_proj's output) and the rotated RoPE key `ropeKey` (a column
    /// range of kv_a_proj_with_mqa's output, shared by all heads).
    func mlaSplit(keyValue: DeviceTensor, ropeKey: DeviceMatrix, heads: Int, noPEDim: Int,
                  valueDim: Int) throws -> (key: DeviceTensor, value: DeviceTensor) {
        let rows = ropeKey.rows, ropeDim = ropeKey.columns
        let key = try empty([rows, heads, noPEDim + ropeDim], keyValue.precision)
        let value = try empty([rows, heads, valueDim], keyValue.precision)
        let elements = rows * heads * (noPEDim + ropeDim + valueDim)
        guard elements > 0 else { return (key, value) }
        let kernel = try self.kernel("mla_split", in: .mlaSplit, precision: keyValue.precision)
        try launch(kernel, grid: ((elements + 255) / 256, 1, 1), threads: 256,
                   [keyValue.address, ropeKey.address, Int64(ropeKey.stride), key.address, value.address,
                    Int32(rows), Int32(heads), Int32(noPEDim), Int32(ropeDim), Int32(valueDim)])
        return (key, value)
    }

    /// The backward pass of ``mlaSplit(keyValue:ropeKey:heads:noPEDim:valueDim:)``: `dKey` `[rows, H, dn + dr]`
    /// and `dValue` `[rows, H, dv]` → the gradient of kv_b_proj's output `[rows, H·(dn + dv)]`, returned, and
    /// that of the shared RoPE key, the sum over heads (in head order), written into `dRopeKey` (`dr`
    /// columns: a column range of kv_a_proj_with_mqa's output gradient).
    func mlaSplitBackward(dKey: DeviceTensor, dValue: DeviceTensor, into dRopeKey: DeviceMatrix, heads: Int, noPEDim: Int,
                          valueDim: Int) throws -> DeviceTensor {
        let rows = dRopeKey.rows, ropeDim = dRopeKey.columns
        precondition(dKey.count == rows * heads * (noPEDim + ropeDim) && dValue.count == rows * heads * valueDim
                     && dKey.precision == dValue.precision && dRopeKey.precision == dKey.precision,
                     "mla split backward: dKey \(dKey.shape), dValue \(dValue.shape), dRopeKey \(rows)x\(ropeDim)")
        let dKeyValue = try empty([rows, heads * (noPEDim + valueDim)], dKey.precision)
        let elements = rows * (heads * (noPEDim + valueDim) + ropeDim)
        guard elements > 0 else { return dKeyValue }
        let kernel = try self.kernel("mla_split_backward", in: .mlaSplit, precision: dKey.precision)
        try launch(kernel, grid: ((elements + 255) / 256, 1, 1), threads: 256,
                   [dKey.address, dValue.address, dKeyValue.address, dRopeKey.address, Int64(dRopeKey.stride),
                    Int32(rows), Int32(heads), Int32(noPEDim), Int32(ropeDim), Int32(valueDim)])
        return dKeyValue
    }
}
