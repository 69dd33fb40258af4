/// ``GQA`` (and ``MHA``) on the GPU: cuBLAS projections, the rotary kernel on q and k, flash attention.
struct DeviceGQA: DeviceAttentionLayer {
    let config: GQAConfig
    let queryWeight: DeviceTensor, keyWeight: DeviceTensor, valueWeight: DeviceTensor, outputWeight: DeviceTensor
    let rotary: DeviceRotary

    init(config: GQAConfig, weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws {
        self.config = config
        queryWeight = try context.upload(weights["q_proj.weight"]!, precision)
        keyWeight = try context.upload(weights["k_proj.weight"]!, precision)
        valueWeight = try context.upload(weights["v_proj.weight"]!, precision)
        outputWeight = try context.upload(weights["o_proj.weight"]!, precision)
        rotary = try DeviceRotary(try config.rope.embedding(headDim: config.headDim), context: context)
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, context: CUDAContext) throws -> DeviceTensor {
        let (batch, length, d) = (x.shape[0], x.shape[1], config.headDim)
        let q = try context.linear(x, queryWeight), k = try context.linear(x, keyWeight)
        let v = try context.linear(x, valueWeight)
        try context.rotate(q.matrix, heads: config.queryHeads, headStride: d, offset: 0, sequenceLength: length, rotary: rotary)
        try context.rotate(k.matrix, heads: config.keyValueHeads, headStride: d, offset: 0, sequenceLength: length, rotary: rotary)
        let attended = try context.attention(
            q: q.reshaped([batch, length, config.queryHeads, d]), k: k.reshaped([batch, length, config.keyValueHeads, d]),
            v: v.reshaped([batch, length, config.keyValueHeads, d]), scale: 1 / Float(d).squareRoot(), keyValid: keyValid)
        return try context.linear(attended.reshaped([batch, length, config.queryHeads * d]), outputWeight)
    }
}

extension GQAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceGQA(config: self, weights: weights, precision: precision, context: context)
    }
}
