/// A layer's GPU implementation: a forward pass from device input over weights it reads in place, that,
/// when asked to keep, returns its backward pass.
protocol DeviceAttentionLayer: Sendable {
    /// `x` `[B,S,E]` with padded rows already zero → `y` `[B,S,E]` (padded rows not yet zeroed); `keyValid`
    /// is `[B·S]` bytes or nil; `positions`, when the rows pack several documents, is `[B·S]` int32, each
    /// row's position within its document (attention and RoPE restart at each). With `keep`, the backward
    /// pass, holding what it needs from this forward.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, positions: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?)
}

extension DeviceAttentionLayer {
    /// The forward pass of rows that each hold one sequence.
    func forward(_ x: DeviceTensor, keyValid: DeviceBuffer?, keep: Bool, context: CUDAContext) throws
        -> (y: DeviceTensor, backward: DeviceBackward?) {
        try forward(x, keyValid: keyValid, positions: nil, keep: keep, context: context)
    }
}

/// One layer's weights on the device under the interchange names: matrices (rank 2) in the compute precision,
/// the rest (norms, convolution taps and biases, temperatures) in float32, as ``DeviceParameters`` holds them
/// for training. A layer keeps these tensors, not copies, so an optimizer step that updates them in place
/// is what the next forward reads.
typealias DeviceWeights = [String: DeviceTensor]

/// The backward pass of one GPU forward: `dy` `[B,S,E]` (zero on padded rows) → `dx` `[B,S,E]` in the
/// storage precision (padded rows not necessarily zero, as for `y`: the caller zeroes them). Each weight's gradient is *added* into `gradients[name]` (float32, the weight's shape),
/// so that micro-batches accumulate into one gradient buffer; zero it first for a single pass.
typealias DeviceBackward = (_ dy: DeviceTensor, _ gradients: DeviceWeights) throws -> DeviceTensor

/// A layer configuration whose kind has a GPU implementation (each kind's `Device*.swift` conforms).
protocol DeviceAttentionConfig: AttentionConfig {
    /// The GPU layer reading `weights` (see ``DeviceWeights``).
    /// - Throws: ``WeightError`` for a missing weight or one of the wrong shape or storage type.
    func deviceLayer(weights: DeviceWeights, context: CUDAContext) throws -> any DeviceAttentionLayer
    /// CPU weights uploaded as the device layers read them: matrices (rank 2) in `precision`, the rest in float32.
    func upload(_ weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> DeviceWeights
}

extension DeviceAttentionConfig {
    func upload(_ weights: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws -> DeviceWeights {
        try weights.mapValues { try context.upload($0, DeviceWeights.storage(of: $0.shape, matrices: precision)) }
    }

    /// The zeroed float32 gradient of every weight of this layer, for one backward pass.
    func zeroGradients(context: CUDAContext) throws -> DeviceWeights {
        var gradients: DeviceWeights = [:]
        for (name, shape) in weightShapes {
            let gradient = try context.empty(shape, .float32)
            try context.zero(gradient)
            gradients[name] = gradient
        }
        return gradients
    }
}

extension DeviceWeights {
    /// The weight `name`, checked against `shape` and the storage a layer reads it in.
    /// - Throws: ``WeightError``.
    func weight(_ name: String, shape: [Int], precision: CUDAPrecision) throws -> DeviceTensor {
        guard let tensor = self[name] else { throw WeightError.missing(name: name, available: keys.sorted()) }
        guard tensor.shape == shape else { throw WeightError.wrongShape(name: name, expected: shape, actual: tensor.shape) }
        guard tensor.precision == precision else {
            throw WeightError.wrongDType(name: name, dtype: tensor.precision.rawValue, expected: precision.rawValue)
        }
        return tensor
    }

    /// The storage precision of the layer's matrices (its activations' precision too).
    var matrixPrecision: CUDAPrecision { values.first { $0.shape.count == 2 }?.precision ?? .float32 }

    /// How a weight of `shape` is stored: matrices (rank 2) in the compute precision `matrices`, the rest
    /// (vectors, and CCA's convolution taps of rank 3, which kernels read as float) in float32.
    static func storage(of shape: [Int], matrices: CUDAPrecision) -> CUDAPrecision { shape.count == 2 ? matrices : .float32 }
}

/// The backward pass of ``attendAndProject(q:k:v:heads:keyValid:positions:outputWeight:keep:context:)``: `dy` `[B,S,E]`
/// → `dq`, `dk`, `dv` (the shapes of q, k, v), adding `o_proj.weight`'s gradient into `gradients`.
typealias DeviceAttentionBackward = (_ dy: DeviceTensor, _ gradients: DeviceWeights) throws
    -> (dq: DeviceTensor, dk: DeviceTensor, dv: DeviceTensor)

/// How every layer ends: attention of `q` `[B,S,Hq,dk]` over `k` `[B,S,Hkv,dk]` and `v` `[B,S,Hkv,dv]`, then the
/// output projection `o_proj.weight` to `y` `[B,S,E]`; with `keep`, the attention keeps its log-sum-exp and
/// the backward pass of both steps comes with `y`.
func attendAndProject(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, heads: Attention.Heads, keyValid: DeviceBuffer?,
                      positions: DeviceBuffer?, outputWeight: DeviceTensor, keep: Bool, context: CUDAContext) throws
    -> (y: DeviceTensor, backward: DeviceAttentionBackward?) {
    let (out, lse) = try Attention.forward(q: q, k: k, v: v, heads: heads, keyValid: keyValid, positions: positions,
                                           keepLSE: keep, context: context)
    let attended = out.reshaped([q.shape[0], q.shape[1], heads.queryHeads * heads.valueDim])
    let y = try Linear.forward(attended, outputWeight, context: context)
    guard let lse else { return (y, nil) }
    return (y, { dy, gradients in
        let dAttended = try context.empty(attended.shape, attended.precision)
        try Linear.backward(dy.matrix, x: attended.matrix, weight: outputWeight, dx: dAttended.matrix, accumulate: false,
                            dWeight: try gradients.weight("o_proj.weight", shape: outputWeight.shape, precision: .float32),
                            context: context)
        return try Attention.backward(dOut: dAttended.reshaped(out.shape), q: q, k: k, v: v, out: out, lse: lse, heads: heads,
                                      keyValid: keyValid, positions: positions, context: context)
    })
}
