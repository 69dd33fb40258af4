extension CUDASelfTest {
    /// ``DeviceZayaRouter`` (`--filter zaya router`) against the CPU ``ZayaRouter`` of the same random directory:
    /// the first layer's router (no carried state) and a later one's (state carried and scaled), on a decode
    /// step's few rows (one, five, eight: the few-row kernels) and on 37 (the products on cuBLAS), with the
    /// skip expert favoured by its balancing bias so that both kinds of choice occur. Each row's expert (-1 for
    /// the skip expert), weight and state are compared.
    static var zayaRouterCases: [Case] {
        var config = zayaModels[0].config
        (config.hiddenSize, config.routerHiddenSize, config.experts, config.hiddenLayers) = (128, 48, 9, 2)
        return [1, 5, 8, 37].map { rows in
            Case(name: "zaya router rows\(rows) E\(config.hiddenSize) R\(config.routerHiddenSize) N\(config.experts), first layer and carried state") {
                context, precision in
                try withRandomZaya(config, precision: precision) { zaya in
                    let x = Tensor<Float>(randomNormal: [rows, config.hiddenSize], seed: UInt64(80 + rows))
                    let previous = Tensor<Float>(randomNormal: [rows, config.routerHiddenSize], seed: UInt64(90 + rows))
                    var pairs: [(gpu: Tensor<Float>, reference: Tensor<Float>)] = []
                    for (layer, carried) in [(0, nil), (1, previous)] as [(Int, Tensor<Float>?)] {
                        let router = zaya.layers[layer].router
                        let cpu = router.forward(x, previousState: carried)
                        let gpu = try context.exclusive { () -> ([Int32], Tensor<Float>, Tensor<Float>) in
                            let device = try DeviceZayaRouter(router, context: context)
                            let (experts, weights, state) = try device.forward(
                                try context.upload(x, .float32), previousState: try carried.map { try context.upload($0, .float32) },
                                context: context)
                            return (try context.download(Int32.self, rows, from: experts), try context.download(weights),
                                    try context.download(state))
                        }
                        let cpuExperts = cpu.experts.map { Float($0 ?? -1) }
                        pairs += [(Tensor(checked: [rows], gpu.0.map(Float.init)), Tensor(checked: [rows], cpuExperts)),
                                  (gpu.1, Tensor(checked: [rows], cpu.weights)), (gpu.2, cpu.state)]
                    }
                    return pairs
                }
            }
        }
    }
}
