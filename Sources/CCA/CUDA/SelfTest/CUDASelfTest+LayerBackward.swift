extension CUDASelfTest {
    /// How a backward case runs the GPU layer.
    enum PullbackPath {
        /// ``CUDALayer/pullback(_:mask:)``: the weights uploaded by ``DeviceAttentionConfig/upload(_:precision:context:)``
        /// (CCA's four projection weights adjacent, one product), gradients starting at zero.
        case standard
        /// Every weight its own upload (CCA's projections one product each), gradients starting at zero.
        case separateTensors
        /// The standard upload with gradients that already hold values: the backward pass must add to them.
        case accumulating
    }

    /// A layer forward and backward case: `y`, `dx` and every weight's gradient against the CPU layer's
    /// ``AttentionLayer/pullback(_:layout:)`` in float64 from the same (storage-rounded) weights and inputs.
    struct LayerBackwardShape {
        let name: String
        let batch: Int, length: Int, masked: Bool
        var path: PullbackPath = .standard
        let config: any DeviceAttentionConfig
    }

    /// Shapes for the layers' backward passes: CCA and CCGQA with every ablation (0, 1 and 2 convolutions,
    /// the QK-mean and value shift off, both temperature modes, partial and full RoPE), groups of 1, 2, 4 and
    /// 8 query heads, one KV head, head dims 20, 64 and 128, S = 1, odd S, ragged padding masks, both
    /// projection paths; GQA shapes beyond those of ``layerCases`` (S = 1, head dim 20); MLA with query/key
    /// head dims 48, 96 and 128 (the last on the forward's Hopper kernel).
    static var layerBackwardShapes: [LayerBackwardShape] {
        func cca(_ hq: Int, _ hkv: Int, _ d: Int, hidden: Int = 256, rope: Double = 0.5, exp: Bool = false,
                 convolutions: Int = 2, mean: Bool = true, shift: Bool = true) -> CCAConfig {
            CCAConfig(hiddenSize: hidden, queryHeads: hq, keyValueHeads: hkv, headDim: d, rope: RoPEConfig(theta: 10_000, fraction: rope),
                      temperature: exp ? .exp : .linear, convolutions: convolutions, qkMean: mean, valueShift: shift)
        }
        func gqa(_ hq: Int, _ hkv: Int, _ d: Int, rope: Double = 1) -> GQAConfig {
            GQAConfig(hiddenSize: 256, queryHeads: hq, keyValueHeads: hkv, headDim: d, rope: RoPEConfig(theta: 10_000, fraction: rope))
        }
        func mla(_ dn: Int, _ dr: Int, _ dv: Int, heads: Int = 4) -> MLAConfig {
            MLAConfig(hiddenSize: 256, heads: heads, queryRank: 96, keyValueRank: 64, noPEHeadDim: dn, ropeHeadDim: dr, valueHeadDim: dv)
        }
        let ccaShapes: [(Int, Int, Bool, PullbackPath, CCAConfig)] = [
            (1, 1, false, .standard, cca(2, 2, 64)),
            (2, 37, false, .standard, cca(4, 2, 128, hidden: 512, exp: true)),
            (2, 70, false, .standard, cca(8, 1, 64, rope: 1)),
            (2, 33, false, .standard, cca(4, 1, 64, convolutions: 1)),
            (1, 20, false, .standard, cca(4, 2, 64, convolutions: 0)),
            (2, 40, false, .standard, cca(4, 2, 64, mean: false, shift: false)),
            (1, 300, false, .standard, cca(8, 2, 128, hidden: 1024)),
            (2, 9, false, .standard, cca(2, 1, 20, hidden: 128)),
            (1, 1, false, .standard, cca(4, 1, 20, hidden: 128, convolutions: 1)),
            (3, 45, true, .standard, cca(4, 4, 64, exp: true)),
            (3, 66, true, .separateTensors, cca(4, 2, 128, hidden: 512)),
            (2, 31, false, .separateTensors, cca(2, 2, 64, exp: true, convolutions: 1, mean: false)),
            (1, 129, false, .standard, cca(4, 1, 128, hidden: 512, exp: true, convolutions: 0, shift: false)),
            (2, 50, false, .accumulating, cca(4, 2, 64)),
            (3, 17, true, .standard, cca(4, 4, 128, hidden: 512, rope: 1, exp: true, mean: false)),
            (2, 24, true, .accumulating, cca(4, 2, 64, rope: 1, convolutions: 1, shift: false)),
        ]
        let gqaShapes: [(Int, Int, Bool, PullbackPath, GQAConfig)] = [
            (1, 1, false, .standard, gqa(2, 1, 64)),
            (2, 9, false, .standard, gqa(4, 1, 20)),
            (2, 33, true, .accumulating, gqa(8, 2, 64, rope: 0.5)),
            (1, 70, false, .standard, gqa(4, 4, 128)),
            (3, 20, true, .standard, gqa(2, 2, 64, rope: 0.5)),
        ]
        let mlaShapes: [(Int, Int, Bool, PullbackPath, MLAConfig)] = [
            (2, 50, false, .standard, mla(64, 32, 64)),
            (1, 130, false, .standard, mla(96, 32, 128)),
            (3, 40, true, .standard, mla(64, 32, 64)),
            (1, 1, false, .standard, mla(64, 32, 64)),
            (2, 19, false, .standard, mla(32, 16, 48, heads: 2)),
            (2, 21, true, .accumulating, mla(64, 32, 64)),
            (1, 65, false, .standard, mla(64, 64, 128)),
        ]
        func shapes<Config: DeviceAttentionConfig>(_ list: [(Int, Int, Bool, PullbackPath, Config)], _ describe: (Config) -> String)
            -> [LayerBackwardShape] {
            list.map { LayerBackwardShape(name: describe($0.4), batch: $0.0, length: $0.1, masked: $0.2, path: $0.3, config: $0.4) }
        }
        return shapes(ccaShapes) { "cca " + Self.describe($0) }
            + shapes(gqaShapes) { "gqa Hq\($0.queryHeads) Hkv\($0.keyValueHeads) d\($0.headDim) rope\($0.rope.fraction)" }
            + shapes(mlaShapes) { "mla H\($0.heads) dn\($0.noPEHeadDim) dr\($0.ropeHeadDim) dv\($0.valueHeadDim)" }
    }

    /// Every layer backward case, and CCA layers whose weights are overwritten in place between passes.
    static var layerBackwardCases: [Case] {
        layerBackwardShapes.map(layerBackwardCase) + inPlaceUpdateCases
    }

    static func layerBackwardCase(_ shape: LayerBackwardShape) -> Case {
        let path = switch shape.path { case .standard: ""; case .separateTensors: " separate"; case .accumulating: " accumulating" }
        let label = "backward \(shape.name) B\(shape.batch) S\(shape.length)\(shape.masked ? " masked" : "")\(path)"
        return Case(name: label) { context, precision in
            let config = shape.config
            let weights = representableWeights(try config.initialWeights(seed: 60), precision)
            let layer = try config.makeLayer(weights: weights)
            let x = representable(Tensor<Float>(randomNormal: [shape.batch, shape.length, config.hiddenSize], seed: 61), precision)
            let dy = representable(Tensor<Float>(randomNormal: x.shape, seed: 62), precision)
            let mask = shape.masked ? paddingMask(batch: shape.batch, length: shape.length) : nil
            let layout = try SequenceLayout(batch: shape.batch, length: shape.length, mask: mask)
            let reference = try referencePullback(config, weights: weights, x: x, dy: dy, layout: layout)
            let names = reference.grads.keys.sorted()
            // What the accumulating path's gradients hold before: of the gradients' own scale, so that a pass
            // that overwrote them instead of adding would be off by about 1.
            let earlier = Dictionary(uniqueKeysWithValues: names.enumerated().map { index, name in
                let gradient = reference.grads[name]!
                let scale = gradient.storage.reduce(0) { max($0, abs($1)) }
                return (name, Tensor(checked: gradient.shape, Tensor<Float>(randomNormal: gradient.shape, seed: 70 + UInt64(index)).storage.map { $0 * scale }))
            })
            let gpu: (y: Tensor<Float>, dx: Tensor<Float>, grads: [String: Tensor<Float>])
            switch shape.path {
            case .standard:
                let (y, backward) = try CUDALayer(layer, precision: precision).pullback(x, mask: mask)
                let (dx, grads) = try backward(dy)
                gpu = (y, dx, grads)
            case .separateTensors, .accumulating:
                gpu = try context.exclusive {
                    let uploaded = shape.path == .separateTensors
                        ? try weights.mapValues { try context.upload($0, DeviceWeights.storage(of: $0.shape, matrices: precision)) }
                        : try config.upload(weights, precision: precision, context: context)
                    let device = try config.deviceLayer(weights: uploaded, context: context)
                    let gradients = shape.path == .accumulating
                        ? try earlier.mapValues { try context.upload($0, .float32) } : try config.zeroGradients(context: context)
                    return try devicePullback(device, x: x, dy: dy, layout: layout, gradients: gradients, precision: precision,
                                              context: context)
                }
            }
            let expected = shape.path == .accumulating
                ? reference.grads.merging(earlier) { gradient, before in
                    Tensor(checked: gradient.shape, zip(gradient.storage, before.storage).map(+))
                } : reference.grads
            return [(layout.zeroingPadding(gpu.y), reference.y), (layout.zeroingPadding(gpu.dx), reference.dx)]
                + names.map { (gpu.grads[$0] ?? Tensor(zeros: [0]), expected[$0]!) }
        }
    }

    /// A CCA layer whose weights are overwritten in place (as an optimizer step does) after a first pass:
    /// the inference forward, the training forward and its backward then match the CPU layer with the new
    /// weights. Both temperature modes; in bfloat16 the tensor-core prologue (both convolutions, head dims
    /// multiples of 16), whose own layout of conv B's taps must be remade from the new weights.
    static var inPlaceUpdateCases: [Case] {
        let configs = [
            CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64, rope: RoPEConfig(theta: 10_000, fraction: 0.5),
                      temperature: .exp),
            CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 2, headDim: 128, rope: RoPEConfig(theta: 10_000, fraction: 0.25)),
        ]
        return configs.map { config in
            Case(name: "cca weights updated in place \(describe(config)) B2 S19") { context, precision in
                let before = representableWeights(try config.initialWeights(seed: 80), precision)
                let after = representableWeights(try config.initialWeights(seed: 81), precision)
                let x = representable(Tensor<Float>(randomNormal: [2, 19, config.hiddenSize], seed: 82), precision)
                let dy = representable(Tensor<Float>(randomNormal: x.shape, seed: 83), precision)
                let layout = try SequenceLayout(batch: 2, length: 19)
                let reference = try referencePullback(config, weights: after, x: x, dy: dy, layout: layout)
                let gpu = try context.exclusive {
                    let weights = try config.upload(before, precision: precision, context: context)
                    let device = try config.deviceLayer(weights: weights, context: context)
                    let input = try context.upload(x, precision)
                    _ = try device.forward(input, keyValid: nil, keep: false, context: context)
                    for (name, tensor) in after { try context.upload(tensor, into: weights[name]!) }
                    let inference = try context.download(try device.forward(input, keyValid: nil, keep: false, context: context).y)
                    let training = try devicePullback(device, x: x, dy: dy, layout: layout,
                                                      gradients: try config.zeroGradients(context: context), precision: precision,
                                                      context: context)
                    return (inference, training)
                }
                return [(gpu.0, reference.y), (gpu.1.y, reference.y), (gpu.1.dx, reference.dx)]
                    + reference.grads.keys.sorted().map { (gpu.1.grads[$0]!, reference.grads[$0]!) }
            }
        }
    }

    /// `weights` with the matrices rounded to what the GPU stores them in (the rest stays float32 there).
    static func representableWeights(_ weights: [String: Tensor<Float>], _ precision: CUDAPrecision) -> [String: Tensor<Float>] {
        weights.mapValues { DeviceWeights.storage(of: $0.shape, matrices: precision) == .float32 ? $0 : representable($0, precision) }
    }

    /// The CPU layer's forward and backward in float64, rounded to float32: `y`, `dx` (both `[B, S, E]`) and
    /// every weight's gradient.
    static func referencePullback(_ config: any AttentionConfig, weights: [String: Tensor<Float>], x: Tensor<Float>,
                                  dy: Tensor<Float>, layout: SequenceLayout) throws
        -> (y: Tensor<Float>, dx: Tensor<Float>, grads: [String: Tensor<Float>]) {
        let layer = try config.makeLayer(weights: weights.mapValues { Tensor<Double>($0) })
        let (y, backward) = try layer.pullback(Tensor<Double>(x), layout: layout)
        let (dx, grads) = try backward(Tensor<Double>(dy))
        return (Tensor<Float>(y), Tensor<Float>(dx), grads.mapValues { Tensor<Float>($0) })
    }

    /// `device`'s forward with `keep` and its backward, adding into `gradients`: `y`, `dx` (padded rows
    /// zeroed, as ``CUDALayer`` returns them) and the gradients.
    static func devicePullback(_ device: any DeviceAttentionLayer, x: Tensor<Float>, dy: Tensor<Float>, layout: SequenceLayout,
                               gradients: DeviceWeights, precision: CUDAPrecision, context: CUDAContext) throws
        -> (y: Tensor<Float>, dx: Tensor<Float>, grads: [String: Tensor<Float>]) {
        let keyValid = try layout.keyValid.map { flags in try context.upload(flags.map { $0 ? UInt8(1) : 0 }) }
        let (y, backward) = try device.forward(try context.upload(layout.zeroingPadding(x), precision), keyValid: keyValid,
                                               keep: true, context: context)
        let dx = try backward!(try context.upload(layout.zeroingPadding(dy), precision), gradients)
        return (layout.zeroingPadding(try context.download(y)), layout.zeroingPadding(try context.download(dx)),
                try gradients.mapValues { try context.download($0) })
    }
}
