/// ``ZayaRouter`` on the GPU, in float32 whatever the model's storage precision (its weights are small, and
/// float32 keeps its top-1 choice the CPU's): the down-projection with the previous layer's state
/// (`zaya_router.cu`), the router MLP (``RMSNorm``, products, bias and GELU), the scores and the choice, all
/// on the device.
struct DeviceZayaRouter: Sendable {
    let down: DeviceTensor, downBias: DeviceTensor, stateScale: DeviceTensor?
    let norm: DeviceTensor, fc1: DeviceTensor, fc1Bias: DeviceTensor, fc2: DeviceTensor, fc2Bias: DeviceTensor
    let out: DeviceTensor, balancingBiases: DeviceTensor
    let epsilon: Float

    init(_ router: ZayaRouter, context: CUDAContext) throws {
        func upload(_ tensor: Tensor<Float>) throws -> DeviceTensor { try context.upload(tensor, .float32) }
        (down, downBias, stateScale) = (try upload(router.down), try upload(router.downBias), try router.stateScale.map(upload))
        (norm, fc1, fc1Bias) = (try upload(router.norm), try upload(router.fc1), try upload(router.fc1Bias))
        (fc2, fc2Bias, out) = (try upload(router.fc2), try upload(router.fc2Bias), try upload(router.out))
        balancingBiases = try upload(Tensor(checked: [router.balancingBiases.count], router.balancingBiases))
        epsilon = router.epsilon
    }

    /// Each row's expert (int32 `[rows]`, -1 for the skip expert) and weight (float32 `[rows]`) for the
    /// float32 `x` `[rows, E]`, and the router state (float32 `[rows, R]`) the next layer adds to its own.
    func forward(_ x: DeviceTensor, previousState: DeviceTensor?, context: CUDAContext) throws
        -> (experts: DeviceBuffer, weights: DeviceTensor, state: DeviceTensor) {
        let rows = x.count / max(1, x.shape.last!), width = down.shape[0], classes = out.shape[0]
        let state = try Linear.forward(x, down, context: context)
        let addState = try context.kernel("zaya_router_state", in: .zayaRouter, precision: .float32)
        let previous = stateScale == nil ? nil : previousState
        try context.launchElementwise(addState, count: rows * width,
                                      [state.address, downBias.address, previous?.address ?? 0, stateScale?.address ?? 0,
                                       state.address, Int64(rows), Int32(width)])
        let biasGELU = try context.kernel("zaya_bias_gelu", in: .zayaRouter, precision: .float32)
        var hidden = try RMSNorm.forward(state.matrix, weight: norm, epsilon: epsilon, context: context).y
        for (weight, bias) in [(fc1, fc1Bias), (fc2, fc2Bias)] {
            hidden = try Linear.forward(hidden, weight, context: context)
            try context.launchElementwise(biasGELU, count: rows * width, [hidden.address, bias.address, Int64(rows), Int32(width)])
        }
        let scores = try Linear.forward(hidden, out, context: context)
        let experts = try context.allocator.allocate(max(1, rows) * 4), weights = try context.empty([rows], .float32)
        let choose = try context.kernel("zaya_router_choose", in: .zayaRouter, precision: .float32)
        try context.launchElementwise(choose, count: rows, [scores.address, balancingBiases.address, experts.address,
                                                            weights.address, Int64(rows), Int32(classes)])
        return (experts, weights, state)
    }
}
