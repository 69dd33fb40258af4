/// ``ZayaRouter`` on the GPU, in float32 whatever the model's storage precision (its weights are small, and
/// float32 keeps its top-1 choice the CPU's): the down-projection with the previous layer's state
/// (`zaya_router.cu`), the router MLP (``RMSNorm``, products, bias and GELU), the scores and the choice, all
/// on the device. A step of at most ``MixtureOfExperts/maximumFewRows`` rows (decoding) takes three launches
/// of one few-row kernel; more rows take cuBLAS products and element kernels.
struct DeviceZayaRouter: Sendable {
    let down: DeviceTensor, downBias: DeviceTensor, stateScale: DeviceTensor?
    let norm: DeviceTensor, fc1: DeviceTensor, fc1Bias: DeviceTensor, fc2: DeviceTensor, fc2Bias: DeviceTensor
    let out: DeviceTensor, balancingBiases: DeviceTensor
    let epsilon: Float
    /// One int in which the few-row path's last launch counts its finished blocks (0 between launches).
    let blocksDone: DeviceBuffer

    init(_ router: ZayaRouter, context: CUDAContext) throws {
        func upload(_ tensor: Tensor<Float>) throws -> DeviceTensor { try context.upload(tensor, .float32) }
        (down, downBias, stateScale) = (try upload(router.down), try upload(router.downBias), try router.stateScale.map(upload))
        (norm, fc1, fc1Bias) = (try upload(router.norm), try upload(router.fc1), try upload(router.fc1Bias))
        (fc2, fc2Bias, out) = (try upload(router.fc2), try upload(router.fc2Bias), try upload(router.out))
        balancingBiases = try upload(Tensor(checked: [router.balancingBiases.count], router.balancingBiases))
        epsilon = router.epsilon
        blocksDone = try context.upload([Int32(0)])
    }

    /// Each row's expert (int32 `[rows]`, -1 for the skip expert) and weight (float32 `[rows]`) for the
    /// float32 `x` `[rows, E]`, and the router state (float32 `[rows, R]`) the next layer adds to its own.
    func forward(_ x: DeviceTensor, previousState: DeviceTensor?, context: CUDAContext) throws
        -> (experts: DeviceBuffer, weights: DeviceTensor, state: DeviceTensor) {
        let rows = x.count / max(1, x.shape.last!), width = down.shape[0], classes = out.shape[0]
        if rows <= MixtureOfExperts.maximumFewRows && down.shape[1] % 8 == 0 && width % 8 == 0
            && rows * max(down.shape[1], width) * 4 <= MixtureOfExperts.maximumSharedBytes
            && classes <= MixtureOfExperts.maximumDeviceExperts + 1 {  // MAX_CLASSES in zaya_router.cu
            return try forwardFewRows(x, previousState: previousState, context: context)
        }
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

    /// ``forward(_:previousState:context:)`` for at most ``MixtureOfExperts/maximumFewRows`` rows (E and R
    /// multiples of 8, the rows within a block's shared memory): three launches of `zaya_router_few_rows`, the down-projection with the carried state,
    /// the norm with fc1 and its GELU, and fc2 with its GELU, whose last block scores and chooses.
    private func forwardFewRows(_ x: DeviceTensor, previousState: DeviceTensor?, context: CUDAContext) throws
        -> (experts: DeviceBuffer, weights: DeviceTensor, state: DeviceTensor) {
        let (inputWidth, width, classes) = (down.shape[1], down.shape[0], out.shape[0])
        let rows = x.count / max(1, inputWidth)
        let state = try context.empty([rows, width], .float32)
        let experts = try context.allocator.allocate(max(1, rows) * 4), weights = try context.empty([rows], .float32)
        guard rows > 0 else { return (experts, weights, state) }
        let kernel = try context.kernel("zaya_router_few_rows", in: .zayaRouter, precision: .float32)
        let warps = 2  // FEW_WARPS in zaya_router.cu: one output column per warp at a time
        func layer(_ input: DeviceTensor, norm: DeviceTensor?, weight: DeviceTensor, bias: DeviceTensor,
                   previous: (state: DeviceTensor, scale: DeviceTensor)?, gelu: Bool, choose: Bool, into y: DeviceTensor) throws {
            let (inFeatures, outFeatures) = (weight.shape[1], weight.shape[0])
            try context.launch(kernel, grid: ((outFeatures + warps - 1) / warps, 1, 1), threads: 32 * warps,
                               sharedBytes: rows * max(inFeatures, choose ? outFeatures : 0) * 4,
                               [input.address, norm?.address ?? 0, epsilon, weight.address, bias.address,
                                previous?.state.address ?? 0, previous?.scale.address ?? 0, Int32(gelu ? 1 : 0), y.address,
                                Int32(rows), Int32(inFeatures), Int32(outFeatures), choose ? out.address : 0,
                                balancingBiases.address, Int32(classes), experts.address, weights.address, blocksDone.address])
        }
        let carried = stateScale.flatMap { scale in previousState.map { (state: $0, scale: scale) } }
        try layer(x, norm: nil, weight: down, bias: downBias, previous: carried, gelu: false, choose: false, into: state)
        let hidden = try context.empty([rows, width], .float32), hidden2 = try context.empty([rows, width], .float32)
        try layer(state, norm: norm, weight: fc1, bias: fc1Bias, previous: nil, gelu: true, choose: false, into: hidden)
        try layer(hidden, norm: nil, weight: fc2, bias: fc2Bias, previous: nil, gelu: true, choose: true, into: hidden2)
        return (experts, weights, state)
    }
}
