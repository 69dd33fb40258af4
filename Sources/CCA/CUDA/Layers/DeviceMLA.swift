/// ``MLA`` on the GPU: cuBLAS projections, RMSNorm and rotary kernels, the key/value split, flash attention
/// (with query/key head dim `dn + dr` and value head dim `dv`).
struct DeviceMLA: DeviceAttentionLayer {
    let config: MLAConfig
    let queryDown: DeviceTensor, queryUp: DeviceTensor, keyValueDown: DeviceTensor, keyValueUp: DeviceTensor
    let outputWeight: DeviceTensor
    let queryNorm: DeviceTensor, keyValueNorm: DeviceTensor
    let rotary: DeviceRotary

    init(config: MLAConfig, weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws {
        self.config = config
        queryDown = try context.upload(weights["q_a_proj.weight"]!, precision)
        queryUp = try context.upload(weights["q_b_proj.weight"]!, precision)
        keyValueDown = try context.upload(weights["kv_a_proj_with_mqa.weight"]!, precision)
        keyValueUp = try context.upload(weights["kv_b_proj.weight"]!, precision)
        outputWeight = try context.upload(weights["o_proj.weight"]!, precision)
        queryNorm = try context.upload(weights["q_a_layernorm.weight"]!, .float32)
        keyValueNorm = try context.upload(weights["kv_a_layernorm.weight"]!, .float32)
        rotary = try DeviceRotary(try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim), context: context)
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, context: CUDAContext) throws -> DeviceTensor {
        let c = config
        let (batch, length, heads) = (x.shape[0], x.shape[1], c.heads)
        let (dn, dr, dv, dc) = (c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim, c.keyValueRank)

        let compressedQuery = try RMSNorm.forward(try context.linear(x, queryDown).matrix, weight: queryNorm,
                                                  epsilon: c.normEpsilon, context: context).y
        let q = try context.linear(compressedQuery, queryUp)  // [B·S, H·(dn+dr)]
        try context.rotate(q.matrix, heads: heads, headStride: dn + dr, offset: dn, sequenceLength: length, rotary: rotary)

        let keyValueInput = try context.linear(x, keyValueDown)  // [B, S, dc + dr]
        try context.rotate(keyValueInput.matrix, heads: 1, headStride: dc + dr, offset: dc, sequenceLength: length,
                           rotary: rotary)
        let compressedKeyValue = try RMSNorm.forward(keyValueInput.columns(0..<dc), weight: keyValueNorm,
                                                     epsilon: c.normEpsilon, context: context).y
        let (k, v) = try context.mlaSplit(keyValue: try context.linear(compressedKeyValue, keyValueUp),
                                          ropeKey: keyValueInput.columns(dc..<(dc + dr)), heads: heads,
                                          noPEDim: dn, valueDim: dv)
        let attended = try context.attention(
            q: q.reshaped([batch, length, heads, dn + dr]), k: k.reshaped([batch, length, heads, dn + dr]),
            v: v.reshaped([batch, length, heads, dv]), scale: 1 / Float(dn + dr).squareRoot(), keyValid: keyValid)
        return try context.linear(attended.reshaped([batch, length, heads * dv]), outputWeight)
    }
}

extension MLAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceMLA(config: self, weights: weights, precision: precision, context: context)
    }
}
