/// ``MLA`` on the GPU: cuBLAS projections, RMSNorm and rotary kernels, the key/value split, flash attention
/// (with query/key head dim `dn + dr` and value head dim `dv`); its backward pass runs the same steps in
/// reverse (the attention backward kernels, the inverse rotations, the RMSNorm backward kernels, the split's
/// backward, cuBLAS).
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

    var heads: Attention.Heads {
        let c = config
        return Attention.Heads(queryHeads: c.heads, keyValueHeads: c.heads, keyDim: c.noPEHeadDim + c.ropeHeadDim,
                               valueDim: c.valueHeadDim, scale: 1 / Double(c.noPEHeadDim + c.ropeHeadDim).squareRoot())
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, positions: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        let c = config
        let (batch, length, h) = (x.shape[0], x.shape[1], c.heads)
        let (dn, dr, dv, dc) = (c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim, c.keyValueRank)
        let rows = batch * length

        let compressedQuery = try Linear.forward(x, queryDown, context: context).reshaped([rows, c.queryRank])
        let (normalizedQuery, queryInverseRMS) = try RMSNorm.forward(compressedQuery.matrix, weight: queryNorm,
                                                                     epsilon: c.normEpsilon, context: context)
        let q = try Linear.forward(normalizedQuery, queryUp, context: context)  // [B·S, H·(dn+dr)]
        try rotary.forward(q.matrix, heads: h, headStride: dn + dr, offset: dn, sequenceLength: length, positions: positions, context: context)

        let keyValueInput = try Linear.forward(x, keyValueDown, context: context).reshaped([rows, dc + dr])
        try rotary.forward(keyValueInput.matrix, heads: 1, headStride: dc + dr, offset: dc, sequenceLength: length,
                           positions: positions, context: context)
        let (normalizedKeyValue, keyValueInverseRMS) = try RMSNorm.forward(keyValueInput.columns(0..<dc), weight: keyValueNorm,
                                                                           epsilon: c.normEpsilon, context: context)
        let (k, v) = try context.mlaSplit(keyValue: try Linear.forward(normalizedKeyValue, keyValueUp, context: context),
                                          ropeKey: keyValueInput.columns(dc..<(dc + dr)), heads: h, noPEDim: dn, valueDim: dv)
        let (q4, k4, v4) = (q.reshaped([batch, length, h, dn + dr]), k.reshaped([batch, length, h, dn + dr]),
                            v.reshaped([batch, length, h, dv]))
        let (y, attentionBackward) = try attendAndProject(q: q4, k: k4, v: v4, heads: heads, keyValid: keyValid, positions: positions,
                                                          outputWeight: outputWeight, keep: keep, context: context)
        guard let attentionBackward else { return (y, nil) }
        return (y, { dy, gradients in
            func gradient(_ name: String, of weight: DeviceTensor) throws -> DeviceTensor {
                try gradients.weight(name, shape: weight.shape, precision: .float32)
            }
            let (dq, dk, dValues) = try attentionBackward(dy, gradients)
            // Queries: RoPE, the up-projection, the norm.
            let dQuery = dq.reshaped(q.shape)
            try rotary.backward(dQuery.matrix, heads: h, headStride: dn + dr, offset: dn, sequenceLength: length, positions: positions, context: context)
            let dNormalizedQuery = try context.empty(normalizedQuery.shape, x.precision)
            try Linear.backward(dQuery.matrix, x: normalizedQuery.matrix, weight: queryUp, dx: dNormalizedQuery.matrix,
                                accumulate: false, dWeight: try gradient("q_b_proj.weight", of: queryUp), context: context)
            let dCompressedQuery = try context.empty(compressedQuery.shape, x.precision)
            try RMSNorm.backward(dNormalizedQuery, x: compressedQuery.matrix, weight: queryNorm, inverseRMS: queryInverseRMS,
                                 dWeight: try gradient("q_a_layernorm.weight", of: queryNorm), into: dCompressedQuery.matrix,
                                 context: context)
            // Keys and values: the split, the up-projection, the norm into the c_kv columns and RoPE in the
            // k_rope columns of kv_a_proj_with_mqa's output gradient.
            let dKeyValueInput = try context.empty(keyValueInput.shape, x.precision)
            let dKeyValue = try context.mlaSplitBackward(dKey: dk, dValue: dValues, into: dKeyValueInput.columns(dc..<(dc + dr)),
                                                         heads: h, noPEDim: dn, valueDim: dv)
            try rotary.backward(dKeyValueInput.matrix, heads: 1, headStride: dc + dr, offset: dc, sequenceLength: length,
                                positions: positions, context: context)
            let dNormalizedKeyValue = try context.empty(normalizedKeyValue.shape, x.precision)
            try Linear.backward(dKeyValue.matrix, x: normalizedKeyValue.matrix, weight: keyValueUp, dx: dNormalizedKeyValue.matrix,
                                accumulate: false, dWeight: try gradient("kv_b_proj.weight", of: keyValueUp), context: context)
            try RMSNorm.backward(dNormalizedKeyValue, x: keyValueInput.columns(0..<dc), weight: keyValueNorm,
                                 inverseRMS: keyValueInverseRMS, dWeight: try gradient("kv_a_layernorm.weight", of: keyValueNorm),
                                 into: dKeyValueInput.columns(0..<dc), context: context)
            let dx = try context.empty(x.shape, x.precision)
            try Linear.backward(dCompressedQuery.matrix, x: x.matrix, weight: queryDown, dx: dx.matrix, accumulate: false,
                                dWeight: try gradient("q_a_proj.weight", of: queryDown), context: context)
            try Linear.backward(dKeyValueInput.matrix, x: x.matrix, weight: keyValueDown, dx: dx.matrix, accumulate: true,
                                dWeight: try gradient("kv_a_proj_with_mqa.weight", of: keyValueDown), context: context)
            return dx
        })
    }
}

extension MLAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: DeviceWeights, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceMLA(config: self, weights: weights, context: context)
    }
}
