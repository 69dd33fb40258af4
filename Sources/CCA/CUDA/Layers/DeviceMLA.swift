/// ``MLA`` on the GPU: cuBLAS projections, RMSNorm and rotary kernels, the key/value split, flash attention
/// (with query/key head dim `dn + dr` and value head dim `dv`).
struct DeviceMLA: DeviceAttentionLayer {
    let config: MLAConfig
    let queryDown: DeviceTensor, queryUp: DeviceTensor, keyValueDown: DeviceTensor, keyValueUp: DeviceTensor
    let outputWeight: DeviceTensor
    let queryNorm: DeviceTensor, keyValueNorm: DeviceTensor
    let rotary: DeviceRotary

    init(config: MLAConfig, weights: DeviceWeights, context: CUDAContext) throws {
        self.config = config
        let precision = weights.matrixPrecision
        func weight(_ name: String, _ precision: CUDAPrecision) throws -> DeviceTensor {
            try weights.weight(name, shape: config.weightShapes[name]!, precision: precision)
        }
        queryDown = try weight("q_a_proj.weight", precision)
        queryUp = try weight("q_b_proj.weight", precision)
        keyValueDown = try weight("kv_a_proj_with_mqa.weight", precision)
        keyValueUp = try weight("kv_b_proj.weight", precision)
        outputWeight = try weight("o_proj.weight", precision)
        queryNorm = try weight("q_a_layernorm.weight", .float32)
        keyValueNorm = try weight("kv_a_layernorm.weight", .float32)
        rotary = try DeviceRotary(try RoPEConfig(theta: config.ropeTheta, fraction: 1).embedding(headDim: config.ropeHeadDim), context: context)
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        guard !keep else { throw CUDAError.unsupported("the MLA backward pass on the GPU") }
        let c = config
        let (batch, length, heads) = (x.shape[0], x.shape[1], c.heads)
        let (dn, dr, dv, dc) = (c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim, c.keyValueRank)

        let compressedQuery = try RMSNorm.forward(try Linear.forward(x, queryDown, context: context).matrix, weight: queryNorm,
                                                  epsilon: c.normEpsilon, context: context).y
        let q = try Linear.forward(compressedQuery, queryUp, context: context)  // [B·S, H·(dn+dr)]
        try rotary.forward(q.matrix, heads: heads, headStride: dn + dr, offset: dn, sequenceLength: length, context: context)

        let keyValueInput = try Linear.forward(x, keyValueDown, context: context)  // [B, S, dc + dr]
        try rotary.forward(keyValueInput.matrix, heads: 1, headStride: dc + dr, offset: dc, sequenceLength: length,
                           context: context)
        let compressedKeyValue = try RMSNorm.forward(keyValueInput.columns(0..<dc), weight: keyValueNorm,
                                                     epsilon: c.normEpsilon, context: context).y
        let (k, v) = try context.mlaSplit(keyValue: try Linear.forward(compressedKeyValue, keyValueUp, context: context),
                                          ropeKey: keyValueInput.columns(dc..<(dc + dr)), heads: heads,
                                          noPEDim: dn, valueDim: dv)
        let attentionHeads = Attention.Heads(queryHeads: heads, keyValueHeads: heads, keyDim: dn + dr, valueDim: dv,
                                             scale: 1 / Double(dn + dr).squareRoot())
        let attended = try Attention.forward(
            q: q.reshaped([batch, length, heads, dn + dr]), k: k.reshaped([batch, length, heads, dn + dr]),
            v: v.reshaped([batch, length, heads, dv]), heads: attentionHeads, keyValid: keyValid, context: context).out
        return (try Linear.forward(attended.reshaped([batch, length, heads * dv]), outputWeight, context: context), nil)
    }
}

extension MLAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: DeviceWeights, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceMLA(config: self, weights: weights, context: context)
    }
}
