/// A ``LanguageModel`` resident on the GPU for decoding (the weights alone, unlike the training model's flat
/// buffers with gradients and moments): the embedding, every block (its norms, attention
/// layer and MLP), the final norm and the head, matrices in the storage precision (bfloat16 or float32) and
/// the norms in float32. Its forward pass runs the new rows of a ``DeviceDecodeStep`` through the paged
/// decode cache and returns the logits after each sequence's last row.
struct DeviceDecodeModel: DeviceDecodingModel {
    struct Block {
        let inputNorm: DeviceTensor, postNorm: DeviceTensor
        let attention: any DeviceDecodeLayer
        /// `[gate; up]` `[2I, E]` (one product), and `down` `[E, I]`.
        let gateUp: DeviceTensor, down: DeviceTensor
    }

    let config: LanguageModelConfig
    let precision: CUDAPrecision
    let embedding: DeviceTensor, head: DeviceTensor, finalNorm: DeviceTensor
    let blocks: [Block]

    /// Uploads `model`'s parameters.
    /// - Throws: ``CUDAError/unsupported(_:)`` for an attention kind or shape the decode kernels do not take.
    init(_ model: LanguageModel<Float>, precision: CUDAPrecision, context: CUDAContext) throws {
        (config, self.precision) = (model.config, precision)
        let parameters = model.parameters
        func matrix(_ name: String) throws -> DeviceTensor { try context.upload(parameters[name]!, precision) }
        func vector(_ name: String) throws -> DeviceTensor { try context.upload(parameters[name]!, .float32) }
        embedding = try matrix("embed_tokens.weight")
        head = config.tiedEmbeddings ? embedding : try matrix("lm_head.weight")
        finalNorm = try vector("norm.weight")
        let attentionConfig = config.attentionLayer()
        blocks = try (0..<config.layers).map { layer in
            let prefix = "layers.\(layer)."
            var attentionWeights: [String: Tensor<Float>] = [:]
            for (name, weight) in parameters where name.hasPrefix(prefix + "self_attn.") {
                attentionWeights[String(name.dropFirst((prefix + "self_attn.").count))] = weight
            }
            let gate = parameters[prefix + "mlp.gate_proj.weight"]!, up = parameters[prefix + "mlp.up_proj.weight"]!
            return Block(inputNorm: try vector(prefix + "input_layernorm.weight"),
                         postNorm: try vector(prefix + "post_attention_layernorm.weight"),
                         attention: try Self.decodeLayer(attentionConfig, weights: attentionWeights, precision: precision,
                                                         context: context),
                         gateUp: try context.upload(try Tensor(shape: [2 * gate.shape[0], gate.shape[1]],
                                                               storage: gate.storage + up.storage), precision),
                         down: try matrix(prefix + "mlp.down_proj.weight"))
        }
    }

    var vocabSize: Int { config.vocabSize }

    static func decodeLayer(_ config: any AttentionConfig, weights: [String: Tensor<Float>], precision: CUDAPrecision,
                            context: CUDAContext) throws -> any DeviceDecodeLayer {
        switch config {
        case let gqa as GQAConfig:
            return try DeviceGQA(config: gqa, weights: try gqa.upload(weights, precision: precision, context: context), context: context)
        case let mla as MLAConfig:
            return try DeviceMLA(config: mla, weights: try mla.upload(weights, precision: precision, context: context), context: context)
        case let cca as CCAConfig:
            return try DeviceCCADecoder(config: cca, weights: try cca.upload(weights, precision: precision, context: context),
                                        context: context)
        default:
            throw CUDAError.unsupported("decoding \(type(of: config)) layers on the GPU")
        }
    }

    /// Logits `[sequences, vocab]` after each sequence's last row, for the step's tokens.
    func forward(step: inout DeviceDecodeStep, cache: DeviceDecodeCache, context: CUDAContext) throws -> DeviceTensor {
        let epsilon = config.normEpsilon
        let x = try Embedding.forward(ids: step.tokens, count: step.rows, table: embedding, context: context)
        for (block, layerCache) in zip(blocks, cache.layers) {
            let normed = try RMSNorm.forward(x.matrix, weight: block.inputNorm, epsilon: epsilon, context: context).y
            let attended = try block.attention.decode(normed, step: &step, cache: layerCache, context: context)
            let (mlpIn, _) = try RMSNorm.forward(x, adding: attended, into: x, weight: block.postNorm, epsilon: epsilon,
                                                 context: context)
            let hidden = try SwiGLU.forward(try Linear.forward(mlpIn, block.gateUp, context: context), context: context)
            let mlpOut = try Linear.forward(hidden, block.down, context: context)
            try Residual.add(x, mlpOut, into: x, context: context)
        }
        // Only the rows whose next token is wanted go through the final norm and the head (a row gather).
        let last = try Embedding.forward(ids: step.sequenceLastRow, count: step.lengths.count, table: x, context: context)
        let normed = try RMSNorm.forward(last.matrix, weight: finalNorm, epsilon: epsilon, context: context).y
        return try Linear.forward(normed, head, context: context)
    }

    /// The decode cache for this model: `pageCount` pages per layer and `stateSlots` sequences.
    func makeCache(pageCount: Int, stateSlots: Int, context: CUDAContext) throws -> DeviceDecodeCache {
        try DeviceDecodeCache(shapes: blocks.map { ($0.attention.decodeHeads, $0.attention.convolutionState) },
                              pageCount: pageCount, stateSlots: stateSlots, precision: precision, context: context)
    }
}
