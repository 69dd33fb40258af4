/// A ZAYA model (`ZayaForCausalLM`) loaded from a Hugging Face model directory, run on the CPU in fp32.
///
/// The forward pass: token embedding, `(e + input_hidden_states_bias) ∘ input_hidden_states_scale`, the
/// ``ZayaDecoderLayer``s (the router state passing from each layer to the next), the final RMSNorm and the
/// tied or untied LM head with its optional bias. The embedding table, the experts and an untied head stay
/// memory-mapped in their files (``StoredTensor``); the small weights (attention, norms, routers) are
/// converted to `Float` when the model loads.
///
/// One forward (``hiddenStates(tokens:layout:states:)``) serves whole batches with padding and decoding
/// through per-layer states (CCA's latent cache, convolution history and delayed value). Forward only.
public struct ZayaModel: Sendable {
    public let config: ZayaConfig
    /// Tokens that end generation: `generation_config.json`'s `eos_token_id`, else `config.json`'s.
    public let stopTokenIDs: [Int]
    /// The directory the model came from; its weight files stay mapped while the model lives.
    public let directory: ModelDirectory
    let embedding: StoredTensor
    let inputScale: Tensor<Float>, inputBias: Tensor<Float>
    let layers: [ZayaDecoderLayer]
    let finalNorm: Tensor<Float>
    let head: StoredTensor, headBias: Tensor<Float>?

    /// Names that only the original alternating-layer (Megatron-style) checkpoints use.
    static let legacyNameParts = [".zaya_block.", ".local_experts.", ".res_scale.", ".input_norm.", "self_attn.qkv.conv_qk"]

    /// Loads the model directory at `path` (see ``ModelDirectory``).
    public init(path: String) throws {
        try self.init(directory: ModelDirectory(path: path))
    }

    /// The model in `directory`: config checked, every weight checked by name, shape and dtype.
    /// - Throws: ``ZayaError``, ``ModelDirectoryError``, ``ConfigFileError`` or ``ConfigError``, each naming
    ///   the file (and tensor) at fault.
    public init(directory: ModelDirectory) throws {
        let config = try ZayaConfig(reading: directory.config)
        if let legacy = directory.tensorNames.first(where: { name in Self.legacyNameParts.contains { name.contains($0) } }) {
            throw ZayaError.legacyWeights(directory: directory.path, tensor: legacy)
        }
        self.config = config
        self.directory = directory
        let generationStops = try directory.generationConfig?.integers(ZayaConfig.CodingKeys.eosTokenIDs.stringValue) ?? []
        stopTokenIDs = generationStops.isEmpty ? config.eosTokenIDs : generationStops
        let (e, vocab) = (config.hiddenSize, config.vocabSize)
        embedding = try directory.tensor("model.embed_tokens.weight", shape: [vocab, e])
        inputScale = try directory.floats("model.input_hidden_states_scale", shape: [e])
        inputBias = try directory.floats("model.input_hidden_states_bias", shape: [e])
        layers = try (0..<config.hiddenLayers).map { try ZayaDecoderLayer(config: config, index: $0, directory: directory) }
        finalNorm = try directory.floats("model.norm.weight", shape: [e])
        head = config.tieWordEmbeddings ? embedding : try directory.tensor("lm_head.weight", shape: [vocab, e])
        headBias = config.lmHeadBias ? try directory.floats("lm_head.bias", shape: [vocab]) : nil
    }

    /// Fresh decode states for `sequences` sequences of at most `capacity` tokens each: `[layer][sequence]`.
    public func makeStates(sequences: Int, capacity: Int) throws -> [[DecodeState<Float>]] {
        try layers.map { layer in try (0..<sequences).map { _ in try layer.attention.makeState(capacity: capacity) } }
    }

    /// The final hidden states `[rows, E]` (after the last norm) of `tokens` laid out by `layout`; with
    /// `states` (`[layer][sequence]`, as ``makeStates(sequences:capacity:)`` makes them) each sequence
    /// continues its state and advances it. Padded rows come out as 0.
    public func hiddenStates(tokens: [Int], layout: SequenceLayout, states: [[DecodeState<Float>]]? = nil) throws -> Tensor<Float> {
        guard tokens.count == layout.rows else { throw ShapeError.mismatch(name: "tokens", expected: [layout.rows], actual: [tokens.count]) }
        if let states, states.count != layers.count { throw DecodeError.stateCount(sequences: layers.count, states: states.count) }
        let (e, vocab) = (config.hiddenSize, config.vocabSize)
        // Padding ids are never looked up: a pad of -100 or the like is fine.
        if let bad = tokens.indices.first(where: { layout.isValid($0) && !(0..<vocab).contains(tokens[$0]) }) {
            throw EmbeddingError.tokenOutOfRange(token: tokens[bad], vocabSize: vocab)
        }
        var x = Tensor<Float>(zeros: [tokens.count, e])
        x.storage.withUnsafeMutableBufferPointer { rows in
            for (row, token) in tokens.enumerated() where layout.isValid(row) {
                embedding.decode((token * e)..<((token + 1) * e), into: rows.baseAddress! + row * e)
                for c in 0..<e { rows[row * e + c] = (rows[row * e + c] + inputBias.storage[c]) * inputScale.storage[c] }
            }
        }
        var routerState: Tensor<Float>?
        for (index, layer) in layers.enumerated() {
            (x, routerState) = try layer.forward(x, routerState: routerState, layout: layout, states: states?[index])
        }
        return layout.zeroingPadding(RMSNorm.forward(x, weight: finalNorm, epsilon: Float(config.rmsNormEpsilon)).y)
    }

    /// The logits `[rows, vocab]` of hidden states `[rows, E]`.
    public func logits(_ hidden: Tensor<Float>) -> Tensor<Float> {
        Linear.forward(hidden, stored: head, bias: headBias)
    }

    /// The logits `[rows, vocab]` of every row of `tokens` laid out by `layout` (padded rows: 0), continuing
    /// `states` when given.
    public func forward(tokens: [Int], layout: SequenceLayout, states: [[DecodeState<Float>]]? = nil) throws -> Tensor<Float> {
        layout.zeroingPadding(logits(try hiddenStates(tokens: tokens, layout: layout, states: states)))
    }

    /// The logits `[B, S, vocab]` of a batch of `tokens` (`B·S` ids, row-major) with an optional `[B, S]`
    /// padding mask (1 token, 0 padding; padded rows' logits are 0), in one pass; or, with `chunkLengths`
    /// (summing to `S`), with every sequence run through fresh decode states in chunks of those lengths,
    /// which must give the same logits. Chunks take no padding (a mask of all ones is fine).
    public func logits(tokens: [Int], batch: Int, length: Int, mask: Tensor<Float>? = nil, chunkLengths: [Int]? = nil) throws -> Tensor<Float> {
        let layout = try SequenceLayout(batch: batch, length: length, mask: mask)
        guard tokens.count == layout.rows else { throw ShapeError.mismatch(name: "input_ids", expected: [batch, length], actual: [tokens.count]) }
        let vocab = config.vocabSize
        guard let chunkLengths else { return try forward(tokens: tokens, layout: layout).reshaped([batch, length, vocab]) }
        guard layout.keyValid == nil else { throw DecodeError.maskWithChunks }
        guard chunkLengths.allSatisfy({ (0...length).contains($0) }), chunkLengths.reduce(0, +) == length else {
            throw DecodeError.chunksDoNotSum(chunks: chunkLengths, length: length)
        }
        let states = try makeStates(sequences: batch, capacity: length)
        var logits = Tensor<Float>(zeros: [batch, length, vocab])
        var start = 0
        for chunk in chunkLengths {
            let rows = (0..<batch).flatMap { b in (start..<(start + chunk)).map { b * length + $0 } }
            let chunkLogits = try forward(tokens: rows.map { tokens[$0] }, layout: SequenceLayout(batch: batch, length: chunk), states: states)
            for (index, row) in rows.enumerated() {
                logits.storage[(row * vocab)..<((row + 1) * vocab)] = chunkLogits.storage[(index * vocab)..<((index + 1) * vocab)]
            }
            start += chunk
        }
        return logits
    }
}
