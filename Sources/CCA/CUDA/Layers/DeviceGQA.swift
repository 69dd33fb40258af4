/// ``GQA`` (and MHA) on the GPU: cuBLAS projections, the rotary kernel on q and k, flash attention; its
/// backward runs the same steps in reverse (the attention backward kernels, the inverse rotation, cuBLAS).
struct DeviceGQA: DeviceAttentionLayer {
    let config: GQAConfig
    let queryWeight: DeviceTensor, keyWeight: DeviceTensor, valueWeight: DeviceTensor, outputWeight: DeviceTensor
    let rotary: DeviceRotary

    init(config: GQAConfig, weights: DeviceWeights, context: CUDAContext) throws {
        self.config = config
        let precision = weights.matrixPrecision
        func matrix(_ name: String) throws -> DeviceTensor {
            try weights.weight(name, shape: config.weightShapes[name]!, precision: precision)
        }
        (queryWeight, keyWeight, valueWeight) = (try matrix("q_proj.weight"), try matrix("k_proj.weight"), try matrix("v_proj.weight"))
        outputWeight = try matrix("o_proj.weight")
        rotary = try DeviceRotary(try config.rope.embedding(headDim: config.headDim), context: context)
    }

    var heads: Attention.Heads {
        Attention.Heads(queryHeads: config.queryHeads, keyValueHeads: config.keyValueHeads, keyDim: config.headDim,
                        valueDim: config.headDim, scale: 1 / Double(config.headDim).squareRoot())
    }

    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, positions: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        let (batch, length, d, hq, hkv) = (x.shape[0], x.shape[1], config.headDim, config.queryHeads, config.keyValueHeads)
        let q = try Linear.forward(x, queryWeight, context: context), k = try Linear.forward(x, keyWeight, context: context)
        let v = try Linear.forward(x, valueWeight, context: context)
        try rotary.forward(q.matrix, heads: hq, keys: (k.matrix, hkv), headStride: d, sequenceLength: length, positions: positions,
                           context: context)
        let (q4, k4, v4) = (q.reshaped([batch, length, hq, d]), k.reshaped([batch, length, hkv, d]), v.reshaped([batch, length, hkv, d]))
        let (y, attentionBackward) = try attendAndProject(q: q4, k: k4, v: v4, heads: heads, keyValid: keyValid, positions: positions,
                                                          outputWeight: outputWeight, keep: keep, context: context)
        guard let attentionBackward else { return (y, nil) }
        return (y, { dy, gradients in
            let (dq, dk, dv) = try attentionBackward(dy, gradients)
            let (dq2, dk2, dv2) = (dq.reshaped(q.shape), dk.reshaped(k.shape), dv.reshaped(v.shape))
            try rotary.backward(dq2.matrix, heads: hq, keys: (dk2.matrix, hkv), headStride: d, sequenceLength: length,
                                positions: positions, context: context)
            let dx = try context.empty(x.shape, x.precision)
            for (index, (name, gradient, weight)) in [("q_proj.weight", dq2, queryWeight), ("k_proj.weight", dk2, keyWeight),
                                                       ("v_proj.weight", dv2, valueWeight)].enumerated() {
                try Linear.backward(gradient.matrix, x: x.matrix, weight: weight, dx: dx.matrix, accumulate: index > 0,
                                    dWeight: try gradients.weight(name, shape: weight.shape, precision: .float32), context: context)
            }
            return dx
        })
    }
}

extension GQAConfig: DeviceAttentionConfig {
    func deviceLayer(weights: DeviceWeights, context: CUDAContext) throws -> any DeviceAttentionLayer {
        try DeviceGQA(config: self, weights: weights, context: context)
    }
}
