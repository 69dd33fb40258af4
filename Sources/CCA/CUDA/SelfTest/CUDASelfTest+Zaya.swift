#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension CUDASelfTest {
    /// ZAYA on the GPU (`--filter zaya`): the expert products alone (``zayaExpertCases``), then small random
    /// ZAYA models (several layers, experts, the skip expert favoured by its balancing bias, a state carried between routers, untied head with a bias) against the CPU
    /// ``ZayaModel`` read from the same directory: the prefill's logits of every row, right padding, and
    /// decoding in chunks and token by token. A bfloat16 case's directory is stored in BF16, which the GPU
    /// uploads byte for byte and the CPU reads exactly, so both run the same weights; its rows decided by a
    /// routing tie are left out (``excludingRoutingTies(_:_:_:)``).
    static var zayaCases: [Case] {
        var cases = zayaExpertCases + zayaRouterCases
        for model in zayaModels {
            cases.append(Case(name: "zaya model \(model.name) prefill, padded", bfloat16Tolerance: zayaModelBFloat16Tolerance) { _, precision in
                try withRandomZaya(model.config, precision: precision) { zaya in
                    let (batch, length) = (3, 13)
                    let tokens = randomTokens(batch * length, vocab: model.config.vocabSize)
                    var mask = Tensor<Float>(zeros: [batch, length], value: 1)
                    for t in 9..<length { mask.storage[length + t] = 0 }
                    let gpu = try DeviceZayaLogits.logits(zaya, tokens: tokens, batch: batch, length: length, mask: mask, precision: precision)
                    return [excludingRoutingTies(gpu, try zaya.logits(tokens: tokens, batch: batch, length: length, mask: mask), precision)]
                }
            })
            cases.append(Case(name: "zaya model \(model.name) decode in chunks 5,1,1,0,4 and token by token",
                              bfloat16Tolerance: zayaModelBFloat16Tolerance) { _, precision in
                try withRandomZaya(model.config, precision: precision) { zaya in
                    let (batch, length) = (2, 11)
                    let tokens = randomTokens(batch * length, vocab: model.config.vocabSize)
                    let reference = try zaya.logits(tokens: tokens, batch: batch, length: length)
                    return try [[5, 1, 1, 0, 4], Array(repeating: 1, count: length)].map { chunks in
                        excludingRoutingTies(try DeviceZayaLogits.logits(zaya, tokens: tokens, batch: batch, length: length,
                                                                         chunkLengths: chunks, precision: precision), reference, precision)
                    }
                }
            })
        }
        for model in zayaModels {
            cases.append(Case(name: "zaya model \(model.name) prompts 0+300 packed beside continuing chunks",
                              bfloat16Tolerance: zayaModelBFloat16Tolerance) { context, precision in
                try withRandomZaya(model.config, precision: precision) { zaya in
                    try mixedPromptSteps(zaya, precision: precision, context: context)
                }
            })
        }
        return cases
    }

    /// Two steps of one ``DeviceZayaModel`` and cache, every row's logits against the CPU model on each whole
    /// sequence: step 1 a prompt of 5 rows (A) and a single first token (B); step 2 A and B continuing (1 and 3
    /// rows) beside two adjacent prompts (C of 300 rows, past a page and over the experts' cuBLAS threshold,
    /// and D of 7), which run the flash attention kernels as packed documents.
    static func mixedPromptSteps(_ zaya: ZayaModel, precision: CUDAPrecision, context: CUDAContext) throws
        -> [(gpu: Tensor<Float>, reference: Tensor<Float>)] {
        let schedule: [[(name: String, count: Int)]] = [[("A", 5), ("B", 1)], [("A", 1), ("B", 3), ("C", 300), ("D", 7)]]
        var lengths: [String: Int] = [:]
        for step in schedule { for chunk in step { lengths[chunk.name, default: 0] += chunk.count } }
        let vocab = zaya.config.vocabSize
        var generator = SplitMix64(seed: 29)
        let tokens = lengths.mapValues { count in (0..<count).map { _ in Int(generator.next() % UInt64(vocab)) } }
        let gpu = try context.exclusive { () -> [String: [Float]] in
            let resident = try DeviceZayaModel(zaya, precision: precision, context: context)
            let cache = try resident.makeCache(pageCount: 16, stateSlots: lengths.count, context: context)
            let ids = try lengths.mapValues { try cache.add(capacity: $0) }
            var done: [String: Int] = [:], logits: [String: [Float]] = [:]
            for chunks in schedule {
                let stepTokens = chunks.flatMap { chunk in tokens[chunk.name]![done[chunk.name, default: 0]...].prefix(chunk.count) }
                var step = try DeviceDecodeStep(sequences: chunks.map { chunk in
                    let sequence = cache.sequences[ids[chunk.name]!]!
                    return (sequence.state, done[chunk.name, default: 0], chunk.count, sequence.pages)
                }, tokens: Array(stepTokens), context: context)
                let out = try context.download(try resident.forward(step: &step, cache: cache, allRows: true, context: context)).storage
                var row = 0
                for chunk in chunks {
                    logits[chunk.name, default: []] += out[(row * vocab)..<((row + chunk.count) * vocab)]
                    row += chunk.count
                    done[chunk.name, default: 0] += chunk.count
                }
            }
            return logits
        }
        return try lengths.keys.sorted().map { name in
            let count = lengths[name]!
            let reference = try zaya.logits(tokens: tokens[name]!, batch: 1, length: count)
            return excludingRoutingTies(Tensor(checked: [count, vocab], gpu[name]!), try reference.reshaped([count, vocab]), precision)
        }
    }

    /// In bfloat16 a router whose two best classes are within the rounding of its input may pick the other
    /// expert than the CPU (over many decisions on random weights some near-tie is likely), and that row's logits differ by far
    /// more than rounding. So in bfloat16 up to one row in ten of `[rows, vocab]` logits over the tolerance is
    /// left out of the comparison (both tensors lose it); more than that, and every row is compared, which
    /// fails. float32 compares every row.
    static func excludingRoutingTies(_ gpu: Tensor<Float>, _ reference: Tensor<Float>, _ precision: CUDAPrecision)
        -> (gpu: Tensor<Float>, reference: Tensor<Float>) {
        guard precision == .bfloat16, gpu.shape == reference.shape, let vocab = reference.shape.last, vocab > 0 else {
            return (gpu, reference)
        }
        let scale = reference.storage.reduce(0) { max($0, abs($1)) }
        let rows = reference.count / vocab
        let tolerance = zayaModelBFloat16Tolerance
        let kept = (0..<rows).filter { row in
            (row * vocab..<((row + 1) * vocab)).allSatisfy { abs(gpu.storage[$0] - reference.storage[$0]) <= tolerance * scale }
        }
        guard rows - kept.count <= rows / 10 else { return (gpu, reference) }
        func rowsOf(_ t: Tensor<Float>) -> Tensor<Float> {
            Tensor(checked: [kept.count, vocab], kept.flatMap { t.storage[($0 * vocab)..<(($0 + 1) * vocab)] })
        }
        return (rowsOf(gpu), rowsOf(reference))
    }

    static let zayaModelBFloat16Tolerance: Float = 5e-2

    /// The random models: ZAYA1's proportions at small width (head dim 32, partial RoPE 0.5, 2:1 groups),
    /// and one with a single KV head, a full rotation, an untied head with a bias and more experts.
    static var zayaModels: [(name: String, config: ZayaConfig)] {
        var small = ZayaConfig()
        (small.vocabSize, small.hiddenSize, small.hiddenLayers) = (96, 64, 3)
        (small.attentionHeads, small.keyValueHeads, small.headDim) = (4, 2, 32)
        (small.moeIntermediateSize, small.experts, small.routerHiddenSize) = (40, 4, 16)
        var other = small
        (other.hiddenLayers, other.attentionHeads, other.keyValueHeads, other.experts) = (2, 4, 1, 7)
        (other.tieWordEmbeddings, other.lmHeadBias) = (false, true)
        other.ropeParameters[ZayaConfig.LayerType.hybrid.rawValue] = .init(ropeTheta: 10_000, partialRotaryFactor: 1)
        // Sliding layers first and last, with a window shorter than the prompts and their own RoPE (theta 1e4,
        // against the full layers' 5e6).
        var sliding = small
        (sliding.layerTypes, sliding.slidingWindow) = ([.hybridSliding, .hybrid, .hybridSliding], 4)
        return [("E64 L3 Hq4 Hkv2 d32 N4 tied", small), ("E64 L2 Hq4 Hkv1 d32 N7 untied+bias rope1", other),
                ("E64 L3 sliding,full,sliding window4", sliding)]
    }

    static func randomTokens(_ count: Int, vocab: Int) -> [Int] {
        var generator = SplitMix64(seed: 71)
        return (0..<count).map { _ in Int(generator.next() % UInt64(vocab)) }
    }

    /// `body` on the ``ZayaModel`` of a random directory of `config` (weights stored as F32, or BF16 for
    /// bfloat16 runs), made in a fresh temporary folder and removed after.
    static func withRandomZaya<R>(_ config: ZayaConfig, precision: CUDAPrecision, _ body: (ZayaModel) throws -> R) throws -> R {
        var template = Array("/tmp/cca-zaya-selftest-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw FileIOError(path: "/tmp", operation: "make a temporary folder", errno: errno) }
        let folder = String(cString: made)
        let files = ["config.json", "model.safetensors"].map { folder + "/" + $0 }
        defer {
            for file in files { _ = unlink(file) }
            _ = rmdir(folder)
        }
        try writeAtomically(Array(zayaConfigJSON(config).utf8), to: files[0])
        try SafeTensors.write(try randomZayaWeights(config), as: precision == .bfloat16 ? .BF16 : .F32, to: files[1])
        return try body(try ZayaModel(path: folder))
    }

    static func zayaConfigJSON(_ c: ZayaConfig) -> String {
        let types = c.resolvedLayerTypes.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        let rope = c.ropeParameters.sorted { $0.key < $1.key }.map { name, p in
            "\"\(name)\": {\"rope_type\": \"default\", \"rope_theta\": \(p.ropeTheta), \"partial_rotary_factor\": \(p.partialRotaryFactor)}"
        }.joined(separator: ", ")
        return """
        {"model_type": "zaya", "vocab_size": \(c.vocabSize), "hidden_size": \(c.hiddenSize), "num_hidden_layers": \(c.hiddenLayers),
         "num_attention_heads": \(c.attentionHeads), "num_key_value_heads": \(c.keyValueHeads), "head_dim": \(c.headDim),
         "moe_intermediate_size": \(c.moeIntermediateSize), "num_experts": \(c.experts), "router_hidden_size": \(c.routerHiddenSize),
         "tie_word_embeddings": \(c.tieWordEmbeddings), "lm_head_bias": \(c.lmHeadBias), "layer_types": [\(types)],
         "sliding_window": \(c.slidingWindow.map(String.init) ?? "null"), "rope_parameters": {\(rope)}, "rms_norm_eps": 1e-05}
        """
    }

    /// Every tensor of a `ZayaForCausalLM` of `c`, random: norms and scales near 1, biases small, the router's
    /// scores spread wide (so that its top-1 choice has a margin) and the skip expert's balancing bias raised.
    static func randomZayaWeights(_ c: ZayaConfig) throws -> [String: Tensor<Float>] {
        let (e, r, n, i, vocab) = (c.hiddenSize, c.routerHiddenSize, c.experts, c.moeIntermediateSize, c.vocabSize)
        var seed: UInt64 = 100
        func normal(_ shape: [Int], std: Float, mean: Float = 0) -> Tensor<Float> {
            seed += 1
            var t = Tensor<Float>(randomNormal: shape, std: std, seed: seed)
            t.storage = t.storage.map { $0 + mean }
            return t
        }
        var weights: [String: Tensor<Float>] = [
            "model.embed_tokens.weight": normal([vocab, e], std: 1),
            "model.input_hidden_states_scale": normal([e], std: 0.1, mean: 1),
            "model.input_hidden_states_bias": normal([e], std: 0.1),
            "model.norm.weight": normal([e], std: 0.1, mean: 1),
        ]
        if !c.tieWordEmbeddings { weights["lm_head.weight"] = normal([vocab, e], std: 0.2) }
        if c.lmHeadBias { weights["lm_head.bias"] = normal([vocab], std: 0.5) }
        for (layer, type) in c.resolvedLayerTypes.enumerated() {
            let prefix = "model.layers.\(layer)."
            seed += 1
            for (name, weight) in try CCA<Float>(config: try c.attention(type), seed: seed).weights {
                weights[prefix + "self_attn." + name] = weight
            }
            weights[prefix + "input_layernorm.weight"] = normal([e], std: 0.1, mean: 1)
            weights[prefix + "post_attention_layernorm.weight"] = normal([e], std: 0.1, mean: 1)
            for module in ["post_attention_residual_scale", "post_mlp_residual_scale"] {
                let names = ResidualScaling.weightNames
                weights[prefix + module + "." + names.hiddenScale] = normal([e], std: 0.1, mean: 1)
                weights[prefix + module + "." + names.residualScale] = normal([e], std: 0.1, mean: 1)
                weights[prefix + module + "." + names.hiddenBias] = normal([e], std: 0.1)
                weights[prefix + module + "." + names.residualBias] = normal([e], std: 0.1)
            }
            let gate = prefix + "mlp.gate."
            weights[gate + "down_proj.weight"] = normal([r, e], std: 1 / Float(e).squareRoot())
            weights[gate + "down_proj.bias"] = normal([r], std: 0.1)
            if layer > 0 { weights[gate + "router_states_scale"] = normal([r], std: 0.1, mean: 0.5) }
            weights[gate + "router_mlp.norm.weight"] = normal([r], std: 0.1, mean: 1)
            for fc in ["fc1", "fc2"] {
                weights[gate + "router_mlp.\(fc).weight"] = normal([r, r], std: 1 / Float(r).squareRoot())
                weights[gate + "router_mlp.\(fc).bias"] = normal([r], std: 0.1)
            }
            weights[gate + "router_mlp.out_proj.weight"] = normal([n + 1, r], std: 8 / Float(r).squareRoot())
            var balancing = Tensor<Float>(zeros: [n + 1])
            balancing.storage[n] = 0.3
            weights[gate + "balancing_biases"] = balancing
            weights[prefix + "mlp.experts.gate_up_proj"] = normal([n, 2 * i, e], std: 1 / Float(e).squareRoot())
            weights[prefix + "mlp.experts.down_proj"] = normal([n, e, i], std: 1 / Float(i).squareRoot())
        }
        return weights
    }
}
