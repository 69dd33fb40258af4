extension CUDASelfTest {
    /// GPU sampling against the CPU ``Sampler``: greedy, temperature, top-k, top-p and their mixes, over three
    /// steps from the same seeded samplers on both sides (the same draw stream), random logits and logits
    /// with many ties (rounded to halves), a vocabulary that is not a multiple of the block. The
    /// distributions must agree to rounding, and every chosen token must be the CPU's, except where the CPU's
    /// draw lies within 1e-5 of a boundary of its cumulative distribution (where rounding decides).
    static var samplingCases: [Case] {
        [(1000, false), (1000, true), (50257, false)].map { vocab, tied in
            Case(name: "decode sampling vocab \(vocab)\(tied ? " tied logits" : "")") { context, precision in
                try samplingCheck(vocab: vocab, tied: tied, context: context, precision: precision)
            }
        }
    }

    static func samplingCheck(vocab: Int, tied: Bool, context: CUDAContext, precision: CUDAPrecision) throws
        -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        let settings: [(temperature: Float, topK: Int?, topP: Float?)] = [
            (0, nil, nil), (1, nil, nil), (0.7, 40, nil), (1.3, nil, 0.9), (1, 5, 0.5), (1, 1, nil), (0.9, nil, 1e-6),
            (1, vocab + 7, 0.99), (2, 300, 0.3),
        ]
        var gpuSamplers = try settings.enumerated().map { index, setting in
            try Sampler(temperature: setting.temperature, topK: setting.topK, topP: setting.topP, seed: UInt64(100 + index))
        }
        var cpuSamplers = gpuSamplers
        var results: [(gpu: Tensor<Float>, reference: Tensor<Float>)] = []
        for step in 0..<3 {
            var logits = Tensor<Float>(randomNormal: [settings.count, vocab], seed: UInt64(7 + step))
            logits.storage = logits.storage.map { tied ? ($0 * 2).rounded() / 2 : 3 * $0 }
            logits = representable(logits, precision)
            let (tokens, distributions) = try context.exclusive { () -> ([Int], Tensor<Float>) in
                let sampled = try Sampler.sample(logits: try context.upload(logits, precision), samplers: &gpuSamplers,
                                                 context: context)
                return (sampled.tokens, try context.download(sampled.distributions))
            }
            var expected: [Float] = [], chosen: [Float] = [], reference: [Float] = []
            for row in 0..<settings.count {
                let rowLogits = Array(logits.storage[(row * vocab)..<((row + 1) * vocab)])
                let (token, distribution, nearBoundary) = cpuSample(&cpuSamplers[row], rowLogits)
                reference += distribution
                expected.append(Float(token))
                chosen.append(nearBoundary ? Float(token) : Float(tokens[row]))
            }
            results.append((Tensor(checked: [settings.count], chosen), Tensor(checked: [settings.count], expected)))
            results.append((distributions, Tensor(checked: [settings.count, vocab], reference)))
        }
        return results
    }

    /// The CPU sampler's token, its distribution, and whether its draw lies within 1e-5 of a step of the
    /// cumulative distribution in index order (where rounding decides between neighbours).
    static func cpuSample(_ sampler: inout Sampler, _ logits: [Float]) -> (token: Int, distribution: [Float], nearBoundary: Bool) {
        var probe = sampler
        let draw = probe.nextDraw()
        let token = sampler.sample(logits), distribution = sampler.distribution(logits)
        var cumulative: Float = 0, nearBoundary = false
        for probability in distribution where probability > 0 {
            cumulative += probability
            nearBoundary = nearBoundary || abs(cumulative - draw) < 1e-5
        }
        return (token, distribution, nearBoundary)
    }

    /// ``DeviceDecodeEngine/sampledStep(_:samplers:)`` against the CPU ``Sampler`` on the logits of
    /// ``DeviceDecodeEngine/step(_:)``: two slots fed the same tokens in steps of one slot each (the same
    /// computation, so the same logits), one sampled on the host and one on the GPU by equal seeded samplers,
    /// the host's token fed back to both; greedy and random sampling.
    static var sampledStepCases: [Case] {
        [(0, nil), (1, 20)].map { (temperature: Float, topK: Int?) in
            Case(name: "decode engine sampled step temperature \(temperature) top-k \(topK.map(String.init) ?? "all")") { context, precision in
                let config = LanguageModelConfig(attention: .ccgqa, hiddenSize: 128, layers: 2, heads: 4, headDim: 64,
                                                 intermediateSize: 128, tiedEmbeddings: true)
                let model = try LanguageModel<Float>(config: config, seed: 7)
                let engine = try DeviceDecodeEngine(model: model, precision: precision, cacheTokens: 64, maxSequences: 2,
                                                    context: context)
                let (host, device) = (try engine.makeSlot(capacity: 20), try engine.makeSlot(capacity: 20))
                var hostSampler = try Sampler(temperature: temperature, topK: topK, seed: 5)
                var deviceSamplers: [Sampler?] = [hostSampler]
                var tokens = [3, 1, 4], chosen: [Float] = [], expected: [Float] = []
                for _ in 0..<6 {
                    let logits = try engine.step([(slot: host, tokens: tokens)])[0]
                    let gpuToken = try engine.sampledStep([(slot: device, tokens: tokens)], samplers: &deviceSamplers)[0]
                    let (token, _, nearBoundary) = cpuSample(&hostSampler, logits)
                    expected.append(Float(token))
                    chosen.append(Float(nearBoundary ? token : gpuToken ?? -1))
                    tokens = [token]
                }
                return [(Tensor(checked: [chosen.count], chosen), Tensor(checked: [expected.count], expected))]
            }
        }
    }
}
