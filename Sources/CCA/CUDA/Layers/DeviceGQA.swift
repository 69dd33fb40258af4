/// ``GQA`` (and ``MHA``) on the GPU: cuBLAS projections, the rotary kernel on q and k, flash attention.
struct DeviceGQA: DeviceAttentionLayer {
    let config: GQAConfig
    let queryWeight: DeviceTensor, keyWeight: DeviceTensor, valueWeight: DeviceTensor, outputWeight: DeviceTensor
    let rotary: DeviceRotary

    init(_ layer: GQA, precision: CUDAPrecision, context: CUDAContext) throws {
        config = layer.config
        queryWeight = try context.upload(layer.weights["q_proj.weight"]!, precision)
        keyWeight = try context.upload(layer.weights["k_proj.weight"]!, precision)
        valueWeight = try context.upload(layer.weights["v_proj.weight"]!, precision)
        outputWeight = try context.upload(layer.weights["o_proj.weight"]!, precision)
        rotary = try DeviceRotary(layer.rotary, context: context)
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
