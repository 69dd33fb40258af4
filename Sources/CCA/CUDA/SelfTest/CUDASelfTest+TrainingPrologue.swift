extension CUDASelfTest {
    /// CCA settings for the training prologue: both temperature modes, 0, 1 and 2 convolutions, the QK-mean
    /// on and off, groups of 1, 2 and 4 query heads, one KV head, head dims 20, 64 and 128, full and partial
    /// RoPE, one row, and more rows than a chunk of the sums over rows.
    static let prologueTrainingConfigs: [(batch: Int, length: Int, config: CCAConfig)] = [
        (1, 1, CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 2, headDim: 64, rope: RoPEConfig(theta: 10_000, fraction: 0.5))),
        (2, 37, CCAConfig(hiddenSize: 512, queryHeads: 4, keyValueHeads: 2, headDim: 128, rope: RoPEConfig(theta: 5e6, fraction: 0.5),
                          temperature: .exp)),
        (2, 20, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 1, headDim: 64, rope: RoPEConfig(theta: 10_000, fraction: 1))),
        (2, 33, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64, temperature: .exp, convolutions: 1)),
        (1, 20, CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 1, headDim: 64, convolutions: 0)),
        (2, 40, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 4, headDim: 64, qkMean: false)),
        (1, 300, CCAConfig(hiddenSize: 1024, queryHeads: 4, keyValueHeads: 2, headDim: 128)),
        (1, 600, CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 1, headDim: 64, temperature: .exp, convolutions: 1,
                           qkMean: false)),
        (2, 9, CCAConfig(hiddenSize: 128, queryHeads: 2, keyValueHeads: 1, headDim: 20)),
    ]

    /// ``DeviceCCAPrologue`` forward and backward against ``CCAPrologue``: q, k, dLatents and every weight
    /// gradient, with the weights and gradients as views of ``DeviceParameters``' flat buffers and the
    /// latents and their gradient as column ranges of wider matrices, as the layers will hold them. The
    /// reference runs in float64: with one KV head the temperature's gradient is one sum over every row, whose
    /// float rounding would be a fair part of the tolerance.
    static var prologueTrainingCases: [Case] {
        prologueTrainingConfigs.map { batch, length, config in
            Case(name: "cca prologue training B\(batch) S\(length) \(describe(config))") { context, precision in
                try prologueTrainingComparison(batch: batch, length: length, config: config, context, precision)
            }
        }
    }

    /// One comparison of ``prologueTrainingCases``: `batch` rows of `length`, each one sequence or, with
    /// `pieces` (lengths back to back over all the rows, each row's summing to `length`), packed documents
    /// given to the GPU as positions and to the CPU as sequences of their own.
    static func prologueTrainingComparison(batch: Int, length: Int, config: CCAConfig, pieces: [Int]? = nil,
                                           _ context: CUDAContext, _ precision: CUDAPrecision) throws
        -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        let (rows, ct, d) = (batch * length, config.convolutionChannels, config.headDim)
        let weights = try config.initialWeights(seed: 50)
        let cpu = CCAPrologue<Double>(config: config, weights: weights.mapValues { Tensor<Double>($0) },
                                      rotary: try config.rope.embedding(headDim: d))
        let layout = try pieces.map { try SequenceLayout(lengths: $0) } ?? SequenceLayout(batch: batch, length: length)
        let latents = representable(Tensor<Float>(randomNormal: [rows, ct], seed: 51), precision)
        let dq = representable(Tensor<Float>(randomNormal: [rows, config.queryHeads, d], seed: 52), precision)
        let dk = representable(Tensor<Float>(randomNormal: [rows, config.keyValueHeads, d], seed: 53), precision)
        let forward = cpu.forward(Tensor<Double>(latents).storage, layout: layout, histories: nil, positions: layout.positions())
        let (dLatents, grads) = cpu.backward(dq: Tensor<Double>(dq), dk: Tensor<Double>(dk), layout: layout, saved: forward.saved)

        let names = DeviceCCAPrologue.weightShapes(config).keys.sorted()
        let gpu = try context.exclusive {
            let parameters = try DeviceParameters(weights.filter { names.contains($0.key) }, precision: precision, context: context)
            func views(_ buffer: DeviceParameters.Buffer) throws -> [String: DeviceTensor] {
                Dictionary(uniqueKeysWithValues: try names.map { ($0, try parameters.view($0, in: buffer)) })
            }
            let prologue = try DeviceCCAPrologue(config: config, weights: try views(.master), context: context)
            let projections = try context.upload(Tensor.concatenatingColumns([latents, Tensor(zeros: [rows, 8])]), precision)
            let positions = try pieces.map { try context.upload(Self.positions(lengths: $0).map(Int32.init)) }
            let (q, k, saved) = try prologue.forward(projections.columns(0..<ct), batch: batch, length: length,
                                                     positions: positions, context: context)
            let dProjections = try context.empty([rows, ct + 8], precision)
            try prologue.backward(dq: try context.upload(dq, precision), dk: try context.upload(dk, precision), saved: saved,
                                  into: dProjections.columns(0..<ct), gradients: try views(.gradients), context: context)
            return (try context.download(q), try context.download(k), try context.download(dProjections).columns(0..<ct),
                    try names.map { try context.download(try parameters.view($0, in: .gradients)) })
        }
        return [(gpu.0, Tensor<Float>(try forward.q.reshaped(gpu.0.shape))), (gpu.1, Tensor<Float>(try forward.k.reshaped(gpu.1.shape))),
                (gpu.2, Tensor(checked: [rows, ct], dLatents.map { Float($0) }))] + zip(gpu.3, names).map { ($0, Tensor<Float>(grads[$1]!)) }
    }
}
